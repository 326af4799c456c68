"""The report's content, independent of the output format (Markdown, HTML)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transfer.report.plots import Plot
from transfer.report.tables import Table


@dataclasses.dataclass(frozen=True)
class ReportDocument:
    """Everything one report shows, in order."""

    title: str
    generated_at: str
    labels: list[str]
    published_source: str
    tables: list[Table]
    plots: list[Plot]
    skipped: dict[str, str]
    output_dir: Path

    def plot_reference(self, plot: Plot) -> str:
        """The plot's path relative to the report, with "/" separators."""
        return plot.path.relative_to(self.output_dir).as_posix()
