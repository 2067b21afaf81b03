"""Free text a user gives: descriptions, messages, reasons, metadata values.

Any character may appear but NUL, which PostgreSQL stores neither in text nor in JSON:
refusing it here keeps every store accepting the same text.
"""

from __future__ import annotations

from modelkeep.errors import InvalidInput


def check_text(what: str, text: str | None) -> str | None:
    """``text`` unchanged, or ``InvalidInput`` naming ``what`` if it holds a NUL."""
    if text is not None and "\x00" in text:
        raise InvalidInput(
            f"{what} contains a NUL character (\\x00)", "remove it; text cannot hold NUL"
        )
    return text
