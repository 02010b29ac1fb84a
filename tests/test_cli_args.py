"""bot/cli.py: command-line arguments are checked before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli


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
    db = tmp_path / "db.sqlite"
    result = run_cli("--db", str(db), "run", "--port", port)
    assert result.code == 2
    assert f"argument --port: invalid port {port!r}: {why}" in result.err
    assert "internal error" not in result.err
    assert not db.exists()  # refused before anything started


def test_run_port_equals_form_is_checked_too(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "db.sqlite"), "run", "--port=70000")
    assert result.code == 2
    assert "must be 0-65535" in result.err


def test_run_help_names_the_port_range() -> None:
    result = run_cli("run", "--help")
    assert result.code == 0
    assert "0-65535" in result.out
