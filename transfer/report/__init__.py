"""The transfer report: paper-style tables (published vs measured), plots and a machine-readable summary."""

from transfer.report.errors import ReportError
from transfer.report.writer import write_report

__all__ = ["ReportError", "write_report"]
