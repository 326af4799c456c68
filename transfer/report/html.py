"""Renders the report as one self-contained HTML file: inline CSS, plots embedded as base64 PNG, no scripts."""

from __future__ import annotations

import base64
from html import escape

from transfer.report.document import ReportDocument
from transfer.report.tables import Table, numeric_columns

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.paper { background: #f3f3f3; color: #555; }
ul.notes { font-size: 0.85em; color: #444; }
img { max-width: 100%; }
"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in table.headers)
    cell_tags = ['<td class="number">' if numeric else "<td>" for numeric in numeric_columns(table)]
    body = []
    for index, row in enumerate(table.rows):
        css = ' class="paper"' if index < table.paper_rows else ""
        cells = "".join(f"{tag}{escape(cell)}</td>" for tag, cell in zip(cell_tags, row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(table: Table) -> list[str]:
    parts = [f"<h2>{escape(table.title)}</h2>", _table_html(table)]
    if table.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(note)}</li>" for note in table.notes) + "</ul>")
    if table.secondary is not None:
        parts.append(f"<details><summary>{escape(table.secondary.title)}</summary>"
                     f"{_table_html(table.secondary)}</details>")
    return parts


def render_html(document: ReportDocument) -> str:
    """The whole report as a standalone HTML page."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(document.title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{escape(document.title)}</h1>", f"<p>Generated at {escape(document.generated_at)}.</p>",
             "<p>Backbones: " + ", ".join(f"<code>{escape(label)}</code>" for label in document.labels) + ".</p>",
             f"<p>Published numbers: {escape(document.published_source)}</p>"]
    for table in document.tables:
        parts += _section(table)
    if document.plots:
        parts.append("<h2>Plots</h2>")
        for plot in document.plots:
            data = base64.b64encode(plot.path.read_bytes()).decode("ascii")
            parts += [f"<h3>{escape(plot.title)}</h3>",
                      f'<img alt="{escape(plot.title)}" src="data:image/png;base64,{data}">']
    if document.skipped:
        parts.append("<h2>Not run</h2><ul>" + "".join(f"<li><code>{escape(task)}</code>: {escape(reason)}</li>"
                                                       for task, reason in document.skipped.items()) + "</ul>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
