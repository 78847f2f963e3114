"""Escaped HTML: every value put into a page goes through `html()`, which escapes it unless it is `Markup`.

Documents are hostile web content: a title, a paragraph, an alt text or a URL may hold `<script>`, quotes or
`javascript:`. Pages are built from trusted template literals whose `{}` holes are filled with escaped values,
so the only unescaped HTML is what this package wrote itself.
"""

from __future__ import annotations

import html as _html
from typing import Iterable
from urllib.parse import urlsplit


class Markup(str):
    """A string of HTML that is already safe to send (built by `html()` or `join()`)."""

    __slots__ = ()


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(_html.escape("" if value is None else str(value), quote=True))


def _hole(value: object) -> object:
    # Numbers cannot carry markup and keep their type so holes like {:.1f} work.
    return value if isinstance(value, (int, float)) else escape(value)


def html(template: str, *values: object, **named: object) -> Markup:
    """`html("<a href='{}'>{}</a>", url, text)`: the template is trusted, every value is escaped."""
    return Markup(template.format(*(_hole(v) for v in values), **{k: _hole(v) for k, v in named.items()}))


def join(parts: Iterable[object], separator: str = "") -> Markup:
    return Markup(separator.join(escape(part) for part in parts))


def safe_link(url: str | None, text: object | None = None) -> Markup:
    """A link to an http(s) URL that leaves no referrer; any other scheme (javascript:, data:) is plain text."""
    if url and urlsplit(url.strip()).scheme.lower() in ("http", "https"):
        return html('<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>', url.strip(),
                    url if text is None else text)
    return html('<span class="inert-url">{}</span>', url if text is None else text)
