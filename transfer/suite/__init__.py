"""The transfer suite: every task with data under a data root, on one or more backbones, then the report."""

from transfer.suite.config import SuiteConfig
from transfer.suite.runner import SuiteError, SuiteOutcome, run_suite

__all__ = ["SuiteConfig", "SuiteError", "SuiteOutcome", "run_suite"]
