"""The report page: a small template filled with escaped text and base64-embedded PNG figures.

One self-contained file: styles inline, images as ``data:`` URLs, no scripts, nothing fetched
(a section may link to a page written next to it, such as the latent explorer).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from string import Template
from typing import Any

__all__ = ["CSS", "Figure", "Section", "Table", "render"]


@dataclass
class Figure:
    """One PNG figure; ``name`` identifies it in the page (``data-figure``)."""

    name: str
    png: bytes
    alt: str


@dataclass
class Table:
    """A table of text: a header, rows of cells, and the cells (row, column) to mark as best."""

    header: list[str]
    rows: list[list[str]]
    marked: set[tuple[int, int]] = field(default_factory=set)
    name: str = "table"


@dataclass
class Section:
    """A titled part of the page: text, an optional figure or table, notes, an optional warning
    and an optional link (href, words) to a page next to this one."""

    id: str
    title: str
    text: str = ""
    figure: Figure | None = None
    notes: list[str] = field(default_factory=list)
    warning: str | None = None
    link: tuple[str, str] | None = None
    table: Table | None = None


_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
$css
</style>
</head>
<body>
<header>
<h1>$title</h1>
<p class="subtitle">$subtitle</p>
$warnings
<div class="cards">$metrics</div>
<dl class="facts">$facts</dl>
</header>
<nav>$nav</nav>
<main>
$sections
<section id="settings"><h2>Settings</h2>
<details><summary>All settings and versions ($settings_source)</summary>
<table class="settings">$settings</table>
</details>
</section>
</main>
<footer>$footer</footer>
</body>
</html>
""")

_SECTION = Template("""<section id="$id">
<h2>$title</h2>
$warning$text$link$figure$table$notes</section>
""")

_FIGURE = Template(
    '<figure><img src="data:image/png;base64,$data" alt="$alt" data-figure="$name"></figure>\n'
)

# The report's style, shared by every page aekit writes (report, explorer, leaderboard).
CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --accent: #2f6fde; --warn-bg: #fff4e5; --warn: #b25b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f6f7f9; }
header, main, nav, footer { max-width: 1080px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 0 0 10px; font-size: 19px; }
.subtitle { margin: 0 0 16px; color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 130px; }
.card .value { font-size: 21px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 12px; font-size: 14px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
nav { font-size: 14px; padding-bottom: 8px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px; margin: 16px 0; }
section p { margin: 0 0 8px; }
figure { margin: 8px 0; overflow-x: auto; }
figure img { max-width: 100%; height: auto; display: block; }
.note { color: var(--muted); font-size: 13px; }
.warning { background: var(--warn-bg); border-left: 4px solid var(--warn); color: #5a3000; padding: 10px 14px; border-radius: 4px; margin: 0 0 12px; }
.warning strong { color: var(--warn); }
table.settings { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
table.settings td { border-bottom: 1px solid var(--line); padding: 3px 14px 3px 0; vertical-align: top; }
table.settings td:first-child { color: var(--muted); font-family: ui-monospace, monospace; }
summary { cursor: pointer; color: var(--accent); }
a.link { color: var(--accent); font-weight: 600; }
.table-wrap { overflow-x: auto; }
table.board { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.board th { text-align: right; color: var(--muted); font-weight: 600; padding: 4px 7px; border-bottom: 2px solid var(--line); white-space: nowrap; }
table.board td { text-align: right; padding: 4px 7px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.board th:first-child, table.board td:first-child { text-align: left; }
table.board td.best { font-weight: 700; background: #e8f0fd; }
footer { color: var(--muted); font-size: 13px; padding-bottom: 32px; }
code { font-family: ui-monospace, monospace; font-size: 13px; }
""".strip()


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _warning(text: str | None) -> str:
    return f'<div class="warning" role="alert"><strong>Warning:</strong> {_e(text)}</div>\n' if text else ""


def _table(t: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>" + "".join(f'<td class="best">{_e(c)}</td>' if (i, j) in t.marked else f"<td>{_e(c)}</td>"
                         for j, c in enumerate(row)) + "</tr>\n"
        for i, row in enumerate(t.rows)
    )
    return (f'<div class="table-wrap"><table class="board" data-table="{_e(t.name)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}</tbody></table></div>\n")


def _section(s: Section) -> str:
    figure = ""
    if s.figure is not None:
        data = base64.b64encode(s.figure.png).decode("ascii")
        figure = _FIGURE.substitute(data=data, alt=_e(s.figure.alt), name=_e(s.figure.name))
    return _SECTION.substitute(
        id=_e(s.id),
        title=_e(s.title),
        warning=_warning(s.warning),
        text=f"<p>{_e(s.text)}</p>\n" if s.text else "",
        link=f'<p><a class="link" href="{_e(s.link[0])}">{_e(s.link[1])}</a></p>\n' if s.link else "",
        table=_table(s.table) if s.table is not None else "",
        figure=figure,
        notes="".join(f'<p class="note">{_e(n)}</p>\n' for n in s.notes),
    )


def render(
    *,
    title: str,
    subtitle: str,
    metrics: list[tuple[str, str]],
    facts: list[tuple[str, str]],
    warnings: list[str],
    sections: list[Section],
    settings: list[tuple[str, str]],
    version: str,
    footer: str | None = None,
    settings_source: str = "config.json",
) -> str:
    """The whole page as a string; every piece of text is HTML-escaped here. ``footer``: the
    last line (default: that the page was written from a run folder and how to rebuild it);
    ``settings_source``: the file the settings table shows."""
    return _PAGE.substitute(
        title=_e(title),
        subtitle=_e(subtitle),
        css=CSS,
        warnings="".join(_warning(w) for w in warnings),
        metrics="".join(
            f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>' for k, v in metrics
        ),
        facts="".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts),
        nav="".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections) + '<a href="#settings">Settings</a>',
        sections="".join(_section(s) for s in sections),
        settings="".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in settings),
        settings_source=_e(settings_source),
        footer=_e(footer) if footer else (f"Written by aekit {_e(version)} from the files in this run folder; rebuild "
                                          "with <code>aekit report RUN_DIR</code>."),
    )
