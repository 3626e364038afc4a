"""Tables and figures → report.md and a self-contained index.html (images inlined, no scripts, no CDN)."""

from __future__ import annotations

import base64
import html
import urllib.parse
from typing import Any

from peftsum.report.tables import Table

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.b{font-weight:bold;background:#eef7ee}
p.note{color:#555;font-size:12px;margin:0 0 .3em}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
td{white-space:pre-wrap;overflow-wrap:anywhere;max-width:340px}"""


# Markdown viewers render inline HTML and links, so text from the store (sources, references, predictions, names,
# reasons) must reach report.md as inert text, as html.escape makes it in index.html: HTML's three specials become
# entities (no tag, no autolink <javascript:…>, no entity trick), and every ASCII punctuation that starts Markdown
# syntax is backslash-escaped (no link or image: [x](javascript:…), no emphasis, code span, table cell break,
# heading, or kramdown attribute list {: onclick=…}). Line breaks end a line of Markdown (a new block could start
# there): in a table cell they become <br>, elsewhere spaces.
_MD_SPECIAL = {**{c: "\\" + c for c in "\\`*_[]!~|#{}"}, "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines' line boundaries
_MD_TEXT = str.maketrans({**_MD_SPECIAL, **{c: " " for c in _LINE_BREAKS}})
_MD_CELL = str.maketrans({**_MD_SPECIAL, **{c: "<br>" for c in _LINE_BREAKS}})


def md_escape(text: str, cell: bool = False) -> str:
    """``text`` as Markdown that renders as exactly that text: the one escaping of every string that goes into
    report.md (``cell``: inside a table cell, where a line break becomes ``<br>``)."""
    text = str(text).replace("\r\n", "\n")
    return text.translate(_MD_CELL if cell else _MD_TEXT)


def table_md(t: Table) -> str:
    lines = [f"### {md_escape(t.title)}", ""]
    if t.note:
        lines += [md_escape(t.note), ""]
    lines += ["| " + " | ".join(md_escape(c, cell=True) for c in t.columns) + " |", "|" + "---|" * len(t.columns)]
    for i, row in enumerate(t.rows):
        cells = [f"**{md_escape(v, cell=True)}**" if (i, j) in t.bold else md_escape(v, cell=True)
                 for j, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table_html(t: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td{' class=b' if (i, j) in t.bold else ''}>{esc(v)}</td>"
                                    for j, v in enumerate(row)) + "</tr>" for i, row in enumerate(t.rows))
    note = f"<p class=note>{esc(t.note)}</p>" if t.note else ""
    return (f'<h3 id="{esc(t.name)}">{esc(t.title)}</h3>{note}<table data-table="{esc(t.name)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def render(title: str, intro: str, sections: list[tuple[str, list[Any]]], fmt: str) -> str:
    """``sections``: (heading, items) where an item is a Table or a figure (name, caption, png bytes)."""
    if fmt == "md":
        out = [f"# {md_escape(title)}", "", md_escape(intro), ""]
        for heading, items in sections:
            out += [f"## {md_escape(heading)}", ""]
            for item in items:
                if isinstance(item, Table):
                    out.append(table_md(item))
                else:
                    name, caption, _ = item
                    out += [f"![{md_escape(caption)}](figures/{urllib.parse.quote(name)}.png)", ""]
        return "\n".join(out)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{esc(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{esc(title)}</h1><p>{esc(intro)}</p>"]
    toc = "".join(f'<li><a href="#s{i}">{esc(h)}</a></li>' for i, (h, _) in enumerate(sections))
    parts.append(f"<ul>{toc}</ul>")
    for i, (heading, items) in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{esc(heading)}</h2>')
        for item in items:
            if isinstance(item, Table):
                parts.append(table_html(item))
            else:
                name, caption, png = item
                data = base64.b64encode(png).decode()
                parts.append(f'<figure><img alt="{esc(caption)}" data-figure="{esc(name)}" '
                             f'src="data:image/png;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>')
    parts.append("</body></html>")
    return "".join(parts)
