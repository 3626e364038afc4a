"""Tables and figures → report.md and a self-contained index.html (images inlined, no scripts, no CDN)."""

from __future__ import annotations

import base64
import html
from typing import Any

from peftsum.report.tables import Table

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td.b{font-weight:bold;background:#eef7ee}
p.note{color:#555;font-size:12px;margin:0 0 .3em}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
td{white-space:pre-wrap;overflow-wrap:anywhere;max-width:340px}"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def table_md(t: Table) -> str:
    lines = [f"### {t.title}", ""]
    if t.note:
        lines += [t.note, ""]
    lines += ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    for i, row in enumerate(t.rows):
        cells = [f"**{_md_cell(v)}**" if (i, j) in t.bold else _md_cell(v) for j, v in enumerate(row)]
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
        out = [f"# {title}", "", intro, ""]
        for heading, items in sections:
            out += [f"## {heading}", ""]
            for item in items:
                if isinstance(item, Table):
                    out.append(table_md(item))
                else:
                    name, caption, _ = item
                    out += [f"![{caption}](figures/{name}.png)", ""]
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
