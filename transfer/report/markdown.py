"""Renders the report as Markdown (GitHub-flavoured tables, images linked from plots/)."""

from __future__ import annotations

from html import escape

from transfer.report.document import ReportDocument
from transfer.report.tables import Table, numeric_columns


def _escape(text: str) -> str:
    """A table cell: pipes escaped, line breaks flattened."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table_lines(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_escape(header) for header in table.headers) + " |",
             "|" + "|".join("---:" if numeric else "---" for numeric in numeric_columns(table)) + "|"]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in table.rows]
    return lines


def render_markdown(document: ReportDocument) -> str:
    """The whole report as Markdown text."""
    lines = [f"# {document.title}", "", f"Generated at {document.generated_at}.", "",
             "Backbones: " + ", ".join(f"`{label}`" for label in document.labels) + ".", "",
             f"Published numbers: {document.published_source}", ""]
    for table in document.tables:
        lines += [f"## {table.title}", ""] + _table_lines(table) + [""]
        lines += [f"- {note}" for note in table.notes] + ([""] if table.notes else [])
        if table.secondary is not None:
            lines += [f"<details><summary>{escape(table.secondary.title)}</summary>", ""]
            lines += _table_lines(table.secondary) + ["", "</details>", ""]
    if document.plots:
        lines += ["## Plots", ""]
        for plot in document.plots:
            lines += [f"### {plot.title}", "", f"![{plot.title}]({document.plot_reference(plot)})", ""]
    if document.skipped:
        lines += ["## Not run", ""] + [f"- `{task}`: {reason}" for task, reason in document.skipped.items()] + [""]
    return "\n".join(lines)
