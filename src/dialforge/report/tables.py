"""HTML tables and small building blocks; every cell goes through `html.escape`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .format import clean


def esc(x: Any) -> str:
    """Escaped for HTML text and attributes, control characters removed."""
    return escape(clean(x), quote=True)


class Raw(str):
    """Markup we built ourselves (a link, a bar): inserted into a cell unescaped."""


def cell(v: Any) -> str:
    return v if isinstance(v, Raw) else esc(v)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    left: int = 1,
    cls: str = "",
    tid: str = "",
    text: Sequence[int] = (),
) -> str:
    """A table whose first `left` columns (and those in `text`) are text, the rest numbers."""
    attrs = (f' class="{esc(cls)}"' if cls else "") + (f' id="{esc(tid)}"' if tid else "")
    kinds = ["l" if i < left or i in text else "n" for i in range(len(headers))]
    th = "".join(f'<th class="{kinds[i]}">{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{kinds[i]}">{cell(v)}</td>' for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table{attrs}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def section(sid: str, title: str, *parts: str) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{"".join(parts)}</section>'


def para(text: str, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"
