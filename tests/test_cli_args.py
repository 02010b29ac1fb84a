"""bot/cli.py: command-line arguments are checked before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import holds_a_database, run_cli, run_subprocess


@pytest.mark.parametrize(
    ("port", "why"),
    [
        ("65536", "must be 0-65535"),
        ("-1", "must be 0-65535"),
        ("99999", "must be 0-65535"),
        ("abc", "not a whole number"),
        ("", "not a whole number"),
    ],
)
def test_run_refuses_a_bad_port_as_a_usage_error(tmp_path: Path, port: str, why: str) -> None:
    db = tmp_path / "newshound.db"
    result = run_cli("--db", str(db), "run", "--port", port)
    assert result.code == 2
    assert f"argument --port: invalid port {port!r}: {why}" in result.err
    assert "internal error" not in result.err
    assert not db.exists()  # refused before anything started


def test_run_port_equals_form_is_checked_too(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "newshound.db"), "run", "--port=70000")
    assert result.code == 2
    assert "must be 0-65535" in result.err


def test_run_help_names_the_port_range() -> None:
    result = run_cli("run", "--help")
    assert result.code == 0
    assert "0-65535" in result.out


# -- watch: every word after the action is the query ---------------------------

CHANNEL = "C0CLITEST01"


@pytest.fixture
def db(db_url: str, tmp_path: Path) -> str:
    return db_url


def watched(db: str) -> list[str]:
    result = run_cli("--db", db, "watch", "list", "--channel", CHANNEL)
    assert result.code == 0, result.err
    return [line[2:].split(" (added by")[0] for line in result.out.splitlines() if line[:2] == "• "]


@pytest.mark.parametrize(
    ("words", "term"),
    [
        (["bitcoin", "-hype"], "bitcoin -hype"),  # -h is --help's short form
        (["chips", "-vendor"], "chips -vendor"),  # -v is --verbose's
        (["chips", "-video"], "chips -video"),
        (["tesla", "-v"], "tesla -v"),  # not --verbose
        (["oil", "-cheap"], "oil -cheap"),  # not -c CHANNEL
        (["bitcoin -hype"], "bitcoin -hype"),  # one quoted argument
        (["--", "bitcoin", "-hype"], "bitcoin -hype"),
        (["trade", "deal", "OR", "tariff"], "trade deal OR tariff"),
        # The shell's quoting is kept: the exclusion is the phrase.
        (["semiconductor", "-rumor", "-some phrase"], 'semiconductor -rumor -"some phrase"'),
        (["semiconductor", '-"some phrase"'], 'semiconductor -"some phrase"'),
    ],
)
def test_watch_add_takes_every_word_after_the_action(db: str, words: list[str], term: str) -> None:
    result = run_cli("--db", db, "watch", "add", "--channel", CHANNEL, *words)
    assert result.code == 0, result.err
    assert result.out.startswith("Now watching ")
    assert watched(db) == [term]


@pytest.mark.parametrize(
    "argv",
    [
        ["watch", "add", "bitcoin", "-c", CHANNEL, "-hype"],
        ["watch", "add", "bitcoin", "-hype", "--channel", CHANNEL],
        ["watch", "add", "bitcoin", f"--channel={CHANNEL}", "-hype"],
        ["watch", "--channel", CHANNEL, "add", "bitcoin", "-hype"],
        ["watch", "-c", CHANNEL, "-v", "add", "bitcoin", "-hype"],  # -v before the action
    ],
)
def test_watch_options_may_stand_anywhere(db: str, argv: list[str]) -> None:
    result = run_cli(*argv, "--db", db)
    assert result.code == 0, result.err
    assert watched(db) == ["bitcoin -hype"]


def test_watch_query_words_after_db_and_config(tmp_path: Path, db: str) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    argv = ["watch", "add", "chips", "--config", str(config), "-vendor", "--db", db]
    result = run_cli(*argv, "--channel", CHANNEL)
    assert result.code == 0, result.err
    assert watched(db) == ["chips -vendor"]


def test_watch_remove_takes_dash_words_too(db: str) -> None:
    assert run_cli("--db", db, "watch", "add", "-c", CHANNEL, "chips", "-vendor").code == 0
    result = run_cli("--db", db, "watch", "remove", "-c", CHANNEL, "chips", "-vendor")
    assert result.code == 0, result.err
    assert watched(db) == []


def test_watch_help_after_the_action_still_helps(db: str) -> None:
    result = run_cli("--db", db, "watch", "add", "--channel", CHANNEL, "-h")
    assert result.code == 0
    assert "Every word after the action is part of the query" in " ".join(result.out.split())
    assert not holds_a_database(db)  # help only: nothing stored, no database made


def test_watch_list_refuses_a_query(db: str) -> None:
    result = run_cli("--db", db, "watch", "list", "--channel", CHANNEL, "extra", "words")
    assert result.code == 2
    assert result.err == (
        "newshound: watch list takes no query (got 'extra words'); "
        "it lists every term of the --channel\n"
    )


def test_other_commands_still_refuse_unknown_arguments(db: str) -> None:
    result = run_cli("--db", db, "status", "--bogus")
    assert result.code == 2
    assert "unrecognized arguments: --bogus" in result.err


def test_watch_query_from_a_real_command_line(db: str) -> None:
    result = run_subprocess("--db", db, "watch", "add", "--channel", CHANNEL, "tesla", "-v")
    assert result.code == 0, result.err
    assert "excluding v" in result.out
    assert watched(db) == ["tesla -v"]
