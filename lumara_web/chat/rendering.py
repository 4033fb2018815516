"""Assistant text → safe HTML. Markdown by markdown-it-py with raw HTML off (tags in the
text come out escaped, javascript: links are refused), then the Ammonia sanitizer (nh3) as a
second, independent wall: only formatting tags survive, links only to http(s) and mailto."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable("table")
_markdown.enable("strikethrough")

ALLOWED_TAGS = {"p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol",
                "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead",
                "tbody", "tr", "th", "td"}
# No style (a CSS url() would fetch from elsewhere) and no img: nothing in an answer may
# make the browser load anything.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}}


def render_markdown(text: str) -> str:
    html = _markdown.render(text)
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")
