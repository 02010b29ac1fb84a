"""aiohttp, imported without the two TLS contexts it builds at import time.

aiohttp 3.x creates `_SSL_CONTEXT_VERIFIED` and `_SSL_CONTEXT_UNVERIFIED` at
module level in `aiohttp/connector.py` (`_make_ssl_context`), loading the
system's CA certificates twice: a third of aiohttp's import time, paid by
every `poll --once`. They serve only requests that pass `ssl=True` or no
`ssl` at all; `bot.fetch` always passes its own context (certifi's bundle,
`bot.fetch._ssl_context`) or `ssl=False` for http://, so they are never used.

While aiohttp is imported, `ssl.create_default_context()` without arguments
returns a bare client context (it still verifies certificates and host
names, and trusts no CA: anything that did use it would fail closed) and
`set_default_verify_paths` loads nothing. Both are restored right after.
The import happens when the process starts (module level, before any
thread of ours runs).
"""

from __future__ import annotations

import ssl
import sys


def _import_without_default_contexts() -> None:
    if "aiohttp" in sys.modules:
        return
    create_default_context = ssl.create_default_context

    def bare_context(
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
        *,
        cafile: str | None = None,
        capath: str | None = None,
        cadata: str | bytes | None = None,
    ) -> ssl.SSLContext:
        if purpose is not ssl.Purpose.SERVER_AUTH or cafile or capath or cadata:
            return create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname

    def load_nothing(self: ssl.SSLContext) -> None:
        return None

    had_own = "set_default_verify_paths" in ssl.SSLContext.__dict__
    own = ssl.SSLContext.__dict__.get("set_default_verify_paths")
    setattr(ssl, "create_default_context", bare_context)  # noqa: B010 - mypy: module attribute
    setattr(ssl.SSLContext, "set_default_verify_paths", load_nothing)  # noqa: B010
    try:
        import aiohttp  # noqa: F401
    finally:
        setattr(ssl, "create_default_context", create_default_context)  # noqa: B010
        if had_own:
            setattr(ssl.SSLContext, "set_default_verify_paths", own)  # noqa: B010
        else:
            delattr(ssl.SSLContext, "set_default_verify_paths")


_import_without_default_contexts()
