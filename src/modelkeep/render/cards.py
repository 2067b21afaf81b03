"""Model cards and governance reports as Markdown or standalone HTML (``fmt`` md or html).

The document comes from ``modelkeep.domain.cards``; Markdown is written there, HTML (every
value escaped, one inline stylesheet) here.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelkeep.domain.cards import (
    Alert,
    Block,
    Bullets,
    Document,
    Heading,
    Para,
    Section,
    card_document,
    governance_report_document,
    to_markdown,
)
from modelkeep.errors import InvalidInput

FORMATS = ("md", "html")


def render_card(facts: Mapping[str, Any], fmt: str = "md") -> str:
    """The model card of one version (``fmt`` is ``md`` or ``html``)."""
    write = _writer(fmt)
    return write(card_document(facts))


def render_governance_report(
    models: Sequence[Mapping[str, Any]], fmt: str, generated_at: str
) -> str:
    """The governance report over ``models`` (see ``governance_report_document``)."""
    write = _writer(fmt)
    return write(governance_report_document(models, generated_at))


def render(document: Document, fmt: str) -> str:
    return _writer(fmt)(document)


def _writer(fmt: str) -> Callable[[Document], str]:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
    write = RENDERERS[fmt]
    return lambda document: write(document.title, document.sections)


# HTML -------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
td { word-break: break-word; }
.alert { background: #fde2e1; border: 2px solid #b00020; color: #7a0014;
         padding: .5rem .75rem; font-weight: bold; }
.empty { color: #666; font-style: italic; }
"""


def to_html(title: str, sections: Sequence[Section]) -> str:
    esc = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for part in sections:
        out.append(f"<section>\n<h2>{esc(part.title)}</h2>")
        out += [_html_block(block) for block in part.blocks]
        out.append("</section>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, Para):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{esc(block.text)}</h3>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in block.lines) + "</ul>"
    if isinstance(block, Alert):
        return f'<p class="alert">{esc(block.text)}</p>'
    if not block.rows:
        return f'<p class="empty">{esc(block.empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


RENDERERS: dict[str, Callable[[str, Sequence[Section]], str]] = {
    "md": to_markdown,
    "html": to_html,
}
