"""Text as Slack sends it to us.

Slack escapes `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;` in slash-command
text, as in message text (https://api.slack.com/reference/surfaces/formatting#escaping:
"you shouldn't HTML escape the entire text. Only these three characters").
"""

from __future__ import annotations

import re

_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY_RE = re.compile("|".join(_ENTITIES))


def unescape_command_text(text: str) -> str:
    """`AT&amp;T` -> `AT&T`. Only Slack's three entities, in one pass, so
    `&amp;lt;` (a typed `&lt;`) stays `&lt;`; any other `&...;` is left as typed."""
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group()], text)
