"""CLI: ``python -m transfer.report RESULTS_DIR [RESULTS_DIR ...] --output OUT [--labels ...]``.

Each RESULTS_DIR's ``**/results.json`` files become one backbone column of the report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import run_cli
from transfer.report.collect import collect_runs
from transfer.report.errors import ReportError
from transfer.report.writer import write_report


def _label_path(text: str) -> tuple[str, str]:
    label, separator, path = text.partition("=")
    if not separator or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m transfer.report", description=__doc__.splitlines()[0])
    parser.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR", help="one directory per backbone")
    parser.add_argument("--output", required=True, help="folder for report.md, report.html, summary.json, plots/")
    parser.add_argument("--labels", nargs="+", help="backbone label per RESULTS_DIR (default: directory names)")
    parser.add_argument("--pretrain-stats", nargs="+", type=_label_path, default=[], metavar="LABEL=PATH",
                        help="pretraining stats.jsonl of a backbone, for the loss and kNN curves")
    parser.add_argument("--title", default="Barlow Twins transfer report")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def run() -> int:
        runs = collect_runs(args.results_dirs, args.labels)
        paths = write_report(runs, args.output, pretrain_stats=dict(args.pretrain_stats), title=args.title)
        for name in ("markdown", "html", "summary"):
            print(f"wrote {paths[name]}")
        return 0

    return run_cli(run, user_errors=(ReportError,))


if __name__ == "__main__":
    sys.exit(main())
