"""``write_report``: results of one or more backbones -> report.md, report.html, summary.json and plots/*.png."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.atomic import atomic_write, atomic_write_json
from transfer.published import published_results
from transfer.report.aggregate import aggregate_runs
from transfer.report.comparison import compare_with_random_init, comparison_table
from transfer.report.document import ReportDocument
from transfer.report.errors import ReportError
from transfer.report.html import render_html
from transfer.report.markdown import render_markdown
from transfer.report.plots import make_plots
from transfer.report.pretrain_stats import read_pretrain_stats
from transfer.report.summary import build_summary
from transfer.report.tables import build_tables
from core.results import TaskResult

PLOTS_DIR = "plots"


def write_report(runs: Mapping[str, Sequence[TaskResult]], output_dir: str | Path,
                 pretrain_stats: Mapping[str, str | Path] | None = None, skipped: Mapping[str, str] | None = None,
                 title: str = "Barlow Twins transfer report") -> dict[str, Path]:
    """Writes the report of ``runs`` (backbone label -> its task results, several per task for trials).

    ``pretrain_stats`` maps a label to its pretraining ``stats.jsonl`` (loss and kNN curves); ``skipped`` maps a
    task to the reason it did not run. Returns the written paths: "markdown", "html", "summary" and "plot:<name>".
    """
    aggregates_by_label = aggregate_runs(runs)
    unknown = sorted(set(pretrain_stats or {}) - set(runs))
    if unknown:
        raise ReportError(f"pretrain_stats names backbone(s) not in runs: {', '.join(unknown)}")
    curves = {label: read_pretrain_stats(path) for label, path in (pretrain_stats or {}).items()}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plots = make_plots(aggregates_by_label, curves, output_dir / PLOTS_DIR)
    comparison = compare_with_random_init(aggregates_by_label)
    tables = build_tables(aggregates_by_label)
    if (table := comparison_table(comparison)) is not None:
        tables.append(table)
    document = ReportDocument(
        title=title, generated_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        labels=list(runs), published_source=published_results()["source"], tables=tables, plots=plots,
        skipped={str(task): str(reason) for task, reason in sorted((skipped or {}).items())},
        output_dir=output_dir)
    paths = {"markdown": output_dir / "report.md", "html": output_dir / "report.html",
             "summary": output_dir / "summary.json"}
    with atomic_write(paths["markdown"]) as handle:
        handle.write(render_markdown(document).encode("utf-8"))
    with atomic_write(paths["html"]) as handle:
        handle.write(render_html(document).encode("utf-8"))
    atomic_write_json(paths["summary"], build_summary(document, aggregates_by_label, comparison))
    paths.update({f"plot:{plot.path.stem}": plot.path for plot in plots})
    return paths
