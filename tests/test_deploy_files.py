"""The files that install newshound: Slack manifest, Dockerfile, docker-compose.yml,
README's service docs. Checked statically: there is no Docker in the test run."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import REPO, run_subprocess
from fakeslack import FakeSlack
from service_helpers import Service

from bot.slack_app import EVENTS_PATH
from bot.store import redact_location

# Secret-looking variable names (as bot.redact counts them).
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE|WEBHOOK|PUBLIC_KEY", re.I)
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?-[^}]*)?\}")


def test_manifest_declares_the_command_scopes_and_both_transports() -> None:
    text = (REPO / "slack-manifest.yaml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert manifest["display_information"]["name"] == "newshound"
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/watch"
    assert command["url"].endswith(EVENTS_PATH)
    assert "add" in command["usage_hint"]
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"chat:write", "commands", "channels:read"} <= set(scopes)
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert "socket_mode_enabled: true" in text  # the Socket Mode variant is documented
    assert "connections:write" in text


def test_dockerfile_essentials() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert "pip install --no-cache-dir ." in text
    assert re.search(r"^USER (?!root|0\b)", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "VOLUME" in text and "NEWSHOUND_DB=/data/" in text and "NEWSHOUND_CONFIG=/data/" in text
    assert 'CMD ["run"' in text
    assert "SLACK_BOT_TOKEN=" not in text  # secrets only at run time
    assert "import psycopg, psycopg_pool" in text  # the build fails if the wheel does not fit


def test_readme_documents_the_service() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running the service", 1)[1].split("<!-- section boundary", 1)[0]
    for needle in (
        "Install in Slack in 5 minutes",
        "slack-manifest.yaml",
        "newshound run",
        "/healthz",
        "/metrics",
        "SIGHUP",
        "docker run",
        "NEWSHOUND_TICK",
    ):
        assert needle in section, needle


@pytest.mark.slow
def test_run_with_a_broken_config_exits_2_with_file_and_line(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  interval: soon\n", encoding="utf-8")
    result = run_subprocess(
        "--config", str(config), "--db", db_url, "run", "--port", "0", timeout=30
    )
    assert result.code == 2
    assert f"{config}:2:" in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_run_without_a_config_file_starts_and_waits_for_one(db_url: str, tmp_path: Path) -> None:
    with FakeSlack() as slack:
        service = Service(tmp_path / "feeds.yaml", db_url, slack).start()
        assert service.get("/healthz").json()["feeds"] == 0
        code, _ = service.stop(signal.SIGTERM)
    assert code == 0
    assert "no config at" in service.log()


# -- docker-compose.yml ----------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def workers(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run this repository's image."""
    return {name: svc for name, svc in data["services"].items() if svc.get("build") == "."}


def env_of(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so every worker's can be compared"
    return env


def test_compose_postgres_has_a_pinned_major_a_named_volume_and_a_readiness_check() -> None:
    data = compose()
    postgres = data["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+(-[a-z0-9.]+)?", postgres["image"])
    [volume] = postgres["volumes"]
    name, target = volume.split(":", 1)
    assert target == "/var/lib/postgresql/data"
    assert name in data["volumes"]  # a named volume, not a bind mount or anonymous one
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert "ports" not in postgres  # only the workers on the compose network reach it
    password = env_of(postgres)["POSTGRES_PASSWORD"]
    assert password is not None
    assert INTERPOLATION.fullmatch(password).group(1) == "POSTGRES_PASSWORD"  # type: ignore[union-attr]


def test_compose_runs_two_workers_on_one_postgres_database() -> None:
    data = compose()
    found = workers(data)
    assert len(found) == 2, sorted(found)
    postgres_env = env_of(data["services"]["postgres"])
    urls = {env_of(svc)["NEWSHOUND_DB"] for svc in found.values()}
    [url] = urls  # every worker on the same database
    assert url is not None and url.startswith("postgresql://")
    user, db = postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_DB"]
    assert url.endswith(f"@postgres:5432/{db}")
    assert url.startswith(f"postgresql://{user}:${{POSTGRES_PASSWORD")
    assert redact_location(url) == f"postgresql://{user}:***@postgres:5432/{db}"
    for name, svc in found.items():
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert svc.get("restart") == "unless-stopped", name


def test_compose_workers_check_their_own_healthz_with_python() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert 'CMD ["run", "--port", "3000"]' in dockerfile  # the port the checks call
    for name, svc in workers(compose()).items():
        test = svc["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], name  # the slim image has no curl or wget
        assert "http://127.0.0.1:3000/healthz" in " ".join(test), name


def test_compose_publishes_one_worker_for_slack_and_discord_requests() -> None:
    found = workers(compose())
    published = {name: svc["ports"] for name, svc in found.items() if svc.get("ports")}
    assert list(published) == ["worker-1"]
    [port] = published["worker-1"]
    assert port.endswith(":3000")
    assert port.startswith("127.0.0.1:")  # behind a reverse proxy, not on every interface
    request_secrets = {"SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DISCORD_PUBLIC_KEY"}
    assert request_secrets <= set(env_of(found["worker-1"]))
    for name, svc in found.items():
        # every worker delivers, so every worker has the delivery tokens
        assert {"SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN"} <= set(env_of(svc)), name
        if name != "worker-1":
            assert not request_secrets & set(env_of(svc)), name


def test_compose_mounts_feeds_yaml_read_only_where_newshound_looks() -> None:
    for name, svc in workers(compose()).items():
        config = env_of(svc)["NEWSHOUND_CONFIG"]
        [(source, mode)] = [
            (source, mode)
            for source, target, mode in (v.rsplit(":", 2) for v in svc["volumes"])
            if target == config
        ]
        assert mode == "ro", name
        assert source.endswith("./feeds.yaml}"), name  # the repository's, unless NEWSHOUND_FEEDS


def test_compose_holds_no_literal_secret() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"xox[a-z]-|xapp-|discord(app)?\.com/api/webhooks", text)
    data = compose()
    for name, svc in data["services"].items():
        for var, value in env_of(svc).items():
            if not SECRET_NAME.search(var):
                continue
            # unset here: passed through from the environment of `docker compose`,
            # or a ${VAR} reference to it
            assert value is None or INTERPOLATION.fullmatch(value), (name, var, value)
        url = env_of(svc).get("NEWSHOUND_DB")
        if url:
            password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            assert INTERPOLATION.fullmatch(password), name


def test_env_example_names_every_variable_the_compose_file_reads() -> None:
    data = compose()
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    wanted = set(INTERPOLATION.findall(text))
    for svc in workers(data).values():
        wanted |= {var for var, value in env_of(svc).items() if value is None}
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert wanted <= listed, wanted - listed
    # no value filled in: the example is committed, the real `.env` is not
    assert not re.search(r"^[A-Z_]+=\S", example, re.M)
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in (REPO / ".dockerignore").read_text(encoding="utf-8").split()


def test_readme_documents_several_workers_on_postgres() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Several workers on PostgreSQL", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "NEWSHOUND_DB='postgresql://",
        "docker compose up -d",
        "--scale worker-2=",
        "docker-compose.yml",
        ".env.example",
        "healthy",
        "postgresql://USER:***@HOST",
        "POSTGRES_PASSWORD",
        "/healthz",
    ):
        assert needle in section, needle
    # every service the README names exists
    for service in re.findall(r"`(worker-\d+|postgres)`", section):
        assert service in compose()["services"], service
