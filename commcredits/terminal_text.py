"""Free text from users (organization names, webhook error bodies) as it may reach a terminal.

Display names stay free (SPEC §2 bounds identifiers, not names), so a name can hold an escape
sequence that would recolour, move the cursor or retitle the operator's terminal, or a bidi
override that makes `evil` read as `live`. Text renderers pass such values through here: every
control character and bidi control is shown as its `\\x..`/`\\u....` escape, everything else as
typed.
"""

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    return _UNSAFE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
