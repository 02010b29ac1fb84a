"""Helpers to drive newshound through its real command line in tests."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.cli import main
from bot.store import DatabaseRefused, Store, is_postgres_url

REPO = Path(__file__).resolve().parent.parent


def holds_a_database(location: str) -> bool:
    """Whether a newshound database was made at `location`: a SQLite file, or
    newshound's tables in a PostgreSQL database (schema)."""
    if not is_postgres_url(location):
        return Path(location).exists()
    try:
        Store(location, create=False).close()
    except DatabaseRefused:  # nothing there yet
        return False
    return True


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> Result:
    """Run `newshound ARGS` in this process (fast); env comes from os.environ."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run `python -m bot ARGS` as a real separate process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(REPO),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_config(
    path: Path,
    feeds: list[str | dict[str, Any]],
    watches: list[dict[str, Any]],
    **settings: Any,
) -> Path:
    base_settings: dict[str, Any] = {
        "allow_networks": ["127.0.0.0/8"],
        "send_interval": "0s",
        "fetch_timeout": "5s",
    }
    base_settings.update(settings)
    document = {
        "settings": base_settings,
        "feeds": [f if isinstance(f, dict) else {"url": f} for f in feeds],
        "watches": watches,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
