"""Builds the report's tables (rendering-neutral rows of strings) from aggregated results and the paper's numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from transfer.published import published_results
from transfer.report.aggregate import MetricStat, TaskAggregate
from transfer.report.table_specs import (
    MAIN_PUBLISHED_METHODS, PUBLISHED_ENGINE, Column, TableSpec, engine_description, table_specs,
)

MISSING = "—"
PAPER_SOURCE = "paper"
MEASURED_SOURCE = "measured"
TRIALS_NOTE = "mean ± std (n=…): mean and sample standard deviation over n trials with different seeds."


@dataclasses.dataclass
class Table:
    """A titled table of display strings with notes; ``secondary`` holds the paper's other methods."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = dataclasses.field(default_factory=list)
    secondary: Table | None = None
    paper_rows: int = 0  # the first rows hold the paper's numbers
    published: dict[str, dict[str, float | None]] = dataclasses.field(default_factory=dict)
    published_table: str | None = None  # the section of the published-results file the paper rows come from


def format_stat(stat: MetricStat) -> str:
    """"56.8" for one trial, "56.8 ± 0.35 (n=3)" for several, "62.1 ± 1.20" for a task-reported spread."""
    if stat.n > 1 and stat.std is not None:
        return f"{stat.mean:.1f} ± {stat.std:.2f} (n={stat.n})"
    if stat.within_run_std is not None:
        return f"{stat.mean:.1f} ± {stat.within_run_std:.2f}"
    return f"{stat.mean:.1f}"


def numeric_columns(table: Table) -> list[bool]:
    """Which columns hold only numbers (or "—"), for right alignment."""
    def numeric(cell: str) -> bool:
        return cell == MISSING or cell[:1].isdigit() or (cell[:1] in "+-" and cell[1:2].isdigit())

    return [bool(table.rows) and all(numeric(row[index]) for row in table.rows) for index in range(len(table.headers))]


def format_published(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _matches(aggregate: TaskAggregate, column: Column, task: str) -> bool:
    return (aggregate.task == task and column.metric in aggregate.metrics
            and (column.dataset is None or aggregate.dataset == column.dataset))


def column_aggregates(aggregates: Sequence[TaskAggregate], column: Column) -> list[TaskAggregate]:
    """The aggregates filling ``column``: those of its first task (in priority order) that has the metric."""
    for task in column.tasks:
        matches = [aggregate for aggregate in aggregates if _matches(aggregate, column, task)]
        if matches:
            return matches
    return []


def _variant(aggregate: TaskAggregate, others: Sequence[TaskAggregate]) -> str:
    parts = []
    for name in ("dataset", "split", "layer"):
        if len({getattr(other, name) for other in others}) > 1:
            parts.append(f"{name} {getattr(aggregate, name) or 'default'}")
    return ", ".join(parts)


def _cell(aggregates: Sequence[TaskAggregate], column: Column) -> str:
    matches = column_aggregates(aggregates, column)
    if not matches:
        return MISSING
    if len(matches) == 1:
        return format_stat(matches[0].metrics[column.metric])
    return "; ".join(f"{format_stat(match.metrics[column.metric])} [{_variant(match, matches)}]" for match in matches)


def _published_rows(spec: TableSpec, columns: Sequence[Column]) -> dict[str, dict[str, float | None]]:
    if spec.published_table is None:
        return {}
    section = published_results()[spec.published_table]
    rows = {}
    for method, values in section["rows"].items():
        rows[method] = {column.published_metric: values[section["metric"].index(column.published_metric)]
                        for column in columns if column.published_metric in section["metric"]}
    return rows


def _published_table_rows(spec: TableSpec, columns: Sequence[Column], published: Mapping[str, Mapping],
                          methods: Sequence[str]) -> list[list[str]]:
    source = PUBLISHED_ENGINE if spec.engine_rows else PAPER_SOURCE
    return [[method, *(format_published(published[method].get(column.published_metric)) for column in columns),
             source] for method in methods]


def _measured_rows(spec: TableSpec, columns: Sequence[Column],
                   aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[list[str]]:
    rows = []
    for label, aggregates in aggregates_by_label.items():
        relevant = [aggregate for aggregate in aggregates if aggregate.task in spec.tasks]
        if not spec.engine_rows:
            rows.append([label, *(_cell(relevant, column) for column in columns), MEASURED_SOURCE])
            continue
        for engine in sorted({aggregate.engine or "" for aggregate in relevant}) or [""]:
            same_engine = [aggregate for aggregate in relevant if (aggregate.engine or "") == engine]
            engine_results = [result for aggregate in same_engine for result in aggregate.results]
            rows.append([label, *(_cell(same_engine, column) for column in columns),
                         engine_description(engine, engine_results)])
    return rows


def _protocol_note(aggregate: TaskAggregate) -> str:
    where = f"{aggregate.dataset}/{aggregate.split}"
    if aggregate.layer:
        where += f", layer {aggregate.layer}"
    if aggregate.engine:
        where += f", {engine_description(aggregate.engine, aggregate.results)}"
    seeds = [str(seed) for seed in aggregate.seeds if seed is not None]
    trials = f"{len(aggregate.results)} trial{'s' if len(aggregate.results) > 1 else ''}"
    if seeds:
        trials += f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)})"
    protocol = ", ".join(f"{key}={value}" for key, value in sorted(aggregate.protocol().items()))
    sha = ", ".join(sha[:12] for sha in aggregate.weights_sha256) or MISSING
    note = f"{aggregate.label} — {aggregate.task} on {where}: {trials}; weights sha256 {sha}"
    return note + (f"; protocol: {protocol}" if protocol else "")


def build_table(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> Table | None:
    """The table for ``spec``, or None when it has no columns or (unless always shown) no results."""
    everything = [aggregate for aggregates in aggregates_by_label.values() for aggregate in aggregates]
    present = [column for column in spec.columns if column_aggregates(everything, column)]
    columns = [column for column in spec.columns if column in present or not column.optional]
    if not columns or (not present and not spec.always_shown):
        return None
    headers = ["Method", *(column.header for column in columns), "Engine" if spec.engine_rows else "Source"]
    published = _published_rows(spec, columns)
    main_methods = [method for method in MAIN_PUBLISHED_METHODS if method in published]
    other_methods = [method for method in published if method not in MAIN_PUBLISHED_METHODS]
    rows = _published_table_rows(spec, columns, published, main_methods)
    rows += _measured_rows(spec, columns, aggregates_by_label)
    notes = [spec.note] if spec.note else []
    if spec.published_table and published_results()[spec.published_table].get("protocol"):
        notes.append(f"Paper rows: {published_results()[spec.published_table]['protocol']}.")
    used = [aggregate for aggregate in everything if any(aggregate in column_aggregates(everything, column)
                                                        for column in columns)]
    if any(stat.n > 1 for aggregate in used for stat in aggregate.metrics.values()):
        notes.append(TRIALS_NOTE)
    notes += [_protocol_note(aggregate) for aggregate in used]
    secondary = None
    if other_methods:
        secondary = Table(key=f"{spec.key}_other_methods", title=f"{spec.title}: other published methods",
                          headers=headers, rows=_published_table_rows(spec, columns, published, other_methods),
                          paper_rows=len(other_methods))
    return Table(key=spec.key, title=spec.title, headers=headers, rows=rows, notes=notes, secondary=secondary,
                 paper_rows=len(main_methods), published=published,
                 published_table=spec.published_table)


def _other_results_table(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]],
                         specs: Sequence[TableSpec]) -> Table | None:
    covered = set().union(*(spec.tasks for spec in specs))
    rows = []
    for label, aggregates in aggregates_by_label.items():
        for aggregate in aggregates:
            if aggregate.task in covered:
                continue
            for metric, stat in aggregate.metrics.items():
                engine = engine_description(aggregate.engine, aggregate.results)
                rows.append([label, aggregate.task, f"{aggregate.dataset}/{aggregate.split}",
                             aggregate.layer or MISSING, engine, metric, format_stat(stat)])
    if not rows:
        return None
    return Table(key="other_results", title="Other results",
                 headers=["Backbone", "Task", "Dataset/split", "Layer", "Engine", "Metric", "Value"], rows=rows)


def build_tables(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[Table]:
    """Every table of the report in order: paper-style tables, then results no table covers."""
    everything = [aggregate for aggregates in aggregates_by_label.values() for aggregate in aggregates]
    specs = table_specs(everything)
    tables = [table for spec in specs if (table := build_table(spec, aggregates_by_label)) is not None]
    other = _other_results_table(aggregates_by_label, specs)
    return tables + ([other] if other else [])
