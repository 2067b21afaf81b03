"""Free text a user gives: descriptions, messages, reasons, metadata values.

Any character may appear but NUL, which PostgreSQL stores neither in text nor in JSON:
refusing it here keeps every store accepting the same text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from modelkeep.errors import InvalidInput


def check_text(what: str, text: str | None) -> str | None:
    """``text`` unchanged, or ``InvalidInput`` naming ``what`` if it holds a NUL."""
    if text is not None and "\x00" in text:
        raise InvalidInput(
            f"{what} contains a NUL character (\\x00)", "remove it; text cannot hold NUL"
        )
    return text


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the known name closest to a mistyped ``word``, or ``""``.

    Case is ignored when matching (``Prod`` finds ``production``)."""
    by_folded = {name.casefold(): name for name in known if name != word}
    close = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    if not close:
        close = [name for name in by_folded if name.startswith(word.casefold())][:1]
    return f"did you mean {by_folded[close[0]]!r}? " if close and word else ""
