"""Human durations for the config file: ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``.

`parse_duration` turns such text into seconds and `format_duration` turns
seconds back into the shortest readable text, so a value that was parsed
can be shown to users the way they would have written it.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

# Unit spellings (lower-case) -> seconds. Longer spellings are listed so that
# "10 minutes" or "2 hours" are understood too; the short forms are canonical.
_UNITS: dict[str, float] = {
    "ms": 0.001,
    "msec": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}

# Longest spelling first so "ms" is not read as "m" followed by garbage.
_UNIT_RE = "|".join(sorted(_UNITS, key=len, reverse=True))
_PART = re.compile(rf"\s*(\d+(?:\.\d+)?|\.\d+)\s*({_UNIT_RE})(?![a-z])\s*")
_BARE_NUMBER = re.compile(r"\s*[+-]?(\d+(?:\.\d*)?|\.\d+)\s*")

_HINT = "use a number with a unit, e.g. 30s, 5m, 2h, 1d or 1h30m"


def parse_duration(text: str | int | float) -> float:
    """Return the duration written in *text* as seconds.

    Accepts ``500ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``1w``, combinations
    such as ``1h30m`` or ``1h 30m`` (each unit at most once) and a bare ``0``.
    Any other bare number is refused because it is ambiguous (seconds?
    minutes?). Raises `ValueError` with a message meant for people.
    """
    if isinstance(text, bool):
        raise ValueError(f"{_show(text)} is not a duration; {_HINT}")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"{_show(text)} is not a duration; {_HINT}")
        if text == 0:
            return 0.0
        if text < 0:
            raise ValueError(f"a duration cannot be negative (got {_show(text)})")
        raise ValueError(f"{_show(text)} has no unit; {_HINT}")
    if not isinstance(text, str):
        raise ValueError(f"{_show(text)} is not a duration; {_HINT}")

    raw = text.strip()
    if not raw:
        raise ValueError(f"a duration cannot be empty; {_HINT}")
    lowered = raw.lower()
    if _BARE_NUMBER.fullmatch(lowered):
        if float(lowered) == 0:
            return 0.0
        if lowered.lstrip().startswith("-"):
            raise ValueError(f"a duration cannot be negative (got {_show(raw)})")
        raise ValueError(f"{_show(raw)} has no unit; {_HINT}")
    if lowered.startswith("-"):
        raise ValueError(f"a duration cannot be negative (got {_show(raw)})")

    total = 0.0
    seen: set[float] = set()
    pos = 0
    while pos < len(lowered):
        match = _PART.match(lowered, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"{_show(raw)} is not a valid duration; {_HINT}")
        number, unit = match.group(1), match.group(2)
        factor = _UNITS[unit]
        if factor in seen:
            raise ValueError(f"{_show(raw)} is not a valid duration: a unit appears twice")
        seen.add(factor)
        total += float(number) * factor
        pos = match.end()
    if not math.isfinite(total):
        raise ValueError(f"{_show(raw)} is too long")
    return total


def format_duration(seconds: float) -> str:
    """Return *seconds* as short text such as ``45s``, ``10m``, ``1h30m`` or ``2d``.

    The result parses back to the same value with `parse_duration` (to the
    millisecond).
    """
    if not math.isfinite(seconds):
        return "forever" if seconds > 0 else "-forever"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        parts.append(f"{millis}ms")
    return "".join(parts)


def _show(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f'"{text}"'
