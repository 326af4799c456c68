"""The Barlow Twins paper's published numbers (Tables 1-4, with the compared methods), shipped as package data."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

PUBLISHED_RESULTS_FILE = "barlow_twins_published_results.json"


@functools.cache
def published_results() -> dict[str, Any]:
    """The whole published-results document: ``{table: {"metric": [...], "rows": {method: [values]}}}``."""
    text = resources.files("transfer").joinpath("published", PUBLISHED_RESULTS_FILE).read_text()
    return json.loads(text)


def published_value(table: str, method: str, metric: str) -> float | None:
    """One published number, e.g. ``published_value("transfer_classification", "Barlow Twins", "voc07_svm_map")``.

    ``None`` where the paper reports no value; ``KeyError`` naming the table/method/metric if unknown.
    """
    document = published_results()
    if table not in document or not isinstance(document[table], dict):
        raise KeyError(f"unknown published table '{table}'")
    section = document[table]
    if method not in section["rows"]:
        raise KeyError(f"table '{table}' has no method '{method}'; known: {', '.join(section['rows'])}")
    if metric not in section["metric"]:
        raise KeyError(f"table '{table}' has no metric '{metric}'; known: {', '.join(section['metric'])}")
    return section["rows"][method][section["metric"].index(metric)]
