"""Published numbers shipped as package data: the Barlow Twins paper's (Tables 1-4, with the compared methods),
and the peer-library numbers the small-image tasks are compared with (``cited_results.json``)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from transfer.registry import CitedResult

PUBLISHED_RESULTS_FILE = "barlow_twins_published_results.json"
CITED_RESULTS_FILE = "cited_results.json"


@functools.cache
def published_results() -> dict[str, Any]:
    """The whole published-results document: ``{table: {"metric": [...], "rows": {method: [values]}}}``."""
    text = resources.files("transfer").joinpath("published", PUBLISHED_RESULTS_FILE).read_text()
    return json.loads(text)


@functools.cache
def _cited_document() -> dict[str, Any]:
    return json.loads(resources.files("transfer").joinpath("published", CITED_RESULTS_FILE).read_text())["results"]


def cited_result(task: str) -> CitedResult:
    """The cited number of ``task`` from ``cited_results.json``; ``KeyError`` naming the known tasks otherwise."""
    document = _cited_document()
    if task not in document:
        raise KeyError(f"{CITED_RESULTS_FILE} has no entry for task '{task}'; known: {', '.join(document)}")
    entry = document[task]
    return CitedResult(method=entry["method"], values={key: float(value) for key, value in entry["values"].items()},
                       source=entry["source"], note=entry.get("note", ""), comparable=bool(entry["comparable"]))


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


def published_markdown(methods: tuple[str, ...] = ("Supervised", "Barlow Twins")) -> str:
    """The published numbers of ``methods`` as Markdown tables, one per paper table (for README and docs)."""
    document = published_results()
    blocks = []
    for table, section in document.items():
        if not isinstance(section, dict):
            continue
        rows = [method for method in methods if method in section["rows"]]
        lines = [f"**{table}**" + (f" ({section['protocol']})" if "protocol" in section else ""), "",
                 "| method | " + " | ".join(section["metric"]) + " |",
                 "|---|" + "---:|" * len(section["metric"])]
        for method in rows:
            values = ["-" if value is None else f"{value:.1f}" for value in section["rows"][method]]
            lines.append(f"| {method} | " + " | ".join(values) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + f"\n\nSource: {document['source']}\n"


if __name__ == "__main__":
    print(published_markdown(), end="")
