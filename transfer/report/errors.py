"""The report's error type."""

from __future__ import annotations


class ReportError(ValueError):
    """The report's inputs are unusable (bad results or stats file, inconsistent labels); names the culprit."""
