"""Builds the report's tables (rendering-neutral rows of strings) from aggregated results and the paper's numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from transfer.published import published_results
from transfer.registry import TaskSpec, all_tasks
from transfer.report.aggregate import WITHIN_RUN_STD_SUFFIX, MetricStat, TaskAggregate
from transfer.report.table_specs import (
    MAIN_PUBLISHED_METHODS, PUBLISHED_ENGINE, Column, TableSpec, engine_description, paper_table_specs,
    task_table_spec,
)

MISSING = "—"
PAPER_SOURCE = "paper"
CITED_SOURCE = "cited"
MEASURED_SOURCE = "measured"
TRIALS_NOTE = "mean ± std (n=…): mean and sample standard deviation over n trials with different seeds."
OFF_PROTOCOL_NOTE = ("Not {whose} protocol: these numbers were made with other values than {whose} (named in the "
                     "last column; a results file that does not record them counts as different), so they are not "
                     "placed beside {whose}.")
PAPER, CITED = "the paper's", "the cited source's"
ON_PROTOCOL = "as specified"


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


def _cell(aggregates: Sequence[TaskAggregate], column: Column) -> str:
    matches = [aggregate for aggregate in aggregates if aggregate.task == column.task
               and column.metric in aggregate.metrics]
    if not matches:
        return MISSING
    if len(matches) == 1:
        return format_stat(matches[0].metrics[column.metric])
    return "; ".join(f"{format_stat(match.metrics[column.metric])} [{_variant(match, matches)}]" for match in matches)


def _variant(aggregate: TaskAggregate, others: Sequence[TaskAggregate]) -> str:
    parts = []
    for name in ("dataset", "split", "layer"):
        if len({getattr(other, name) for other in others}) > 1:
            parts.append(f"{name} {getattr(aggregate, name) or 'default'}")
    return ", ".join(parts) or f"seeds {', '.join(str(seed) for seed in aggregate.seeds)}"


def _published_rows(spec: TableSpec) -> dict[str, dict[str, float | None]]:
    if spec.published_table is None:
        return {}
    section = published_results()[spec.published_table]
    return {method: {column.published_metric: values[section["metric"].index(column.published_metric)]
                     for column in spec.columns} for method, values in section["rows"].items()}


def _published_table_rows(spec: TableSpec, published: Mapping[str, Mapping], methods: Sequence[str]) -> list[list[str]]:
    source = PUBLISHED_ENGINE if spec.engine_rows else PAPER_SOURCE
    return [[method, *(format_published(published[method].get(column.published_metric)) for column in spec.columns),
             source] for method in methods]


def _row_groups(spec: TableSpec, aggregates: Sequence[TaskAggregate]) -> list[tuple[str, list[TaskAggregate]]]:
    """Aggregates of one backbone split into rows: one per engine (detection) and per protocol gap."""
    keys: dict[tuple[str, str], list[TaskAggregate]] = {}
    for aggregate in aggregates:
        engine = (aggregate.engine or "") if spec.engine_rows else ""
        keys.setdefault((engine, aggregate.gap or ""), []).append(aggregate)
    return [(engine, group) for (engine, _), group in sorted(keys.items())]


def _measured_rows(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]],
                   with_gap: bool) -> list[list[str]]:
    rows = []
    for label, aggregates in aggregates_by_label.items():
        relevant = [aggregate for aggregate in aggregates if aggregate.task in spec.tasks]
        for engine, group in _row_groups(spec, relevant):
            row = [label, *(_cell(group, column) for column in spec.columns)]
            if spec.engine_rows:
                row.append(engine_description(engine, [result for aggregate in group for result in aggregate.results]))
            elif not with_gap:
                row.append(MEASURED_SOURCE)
            if with_gap:
                row.append("; ".join(dict.fromkeys(aggregate.gap or ON_PROTOCOL for aggregate in group)))
            rows.append(row)
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
    facts = ", ".join(f"{key}={value}" for key, value in aggregate.protocol_facts.items()) or "none recorded"
    sha = ", ".join(sha[:12] for sha in aggregate.weights_sha256) or MISSING
    return f"{aggregate.label} — {aggregate.task} on {where}: {trials}; weights sha256 {sha}; protocol values: {facts}"


def _notes(spec: TableSpec, used: Sequence[TaskAggregate]) -> list[str]:
    notes = [spec.note] if spec.note else []
    if any(stat.n > 1 for aggregate in used for stat in aggregate.metrics.values()):
        notes.append(TRIALS_NOTE)
    return notes + [_protocol_note(aggregate) for aggregate in used]


def _split_by_protocol(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]
                       ) -> tuple[dict[str, list[TaskAggregate]], dict[str, list[TaskAggregate]]]:
    """The results of ``spec``'s tasks made with the protocol's values, and those made with others."""
    on = {label: [aggregate for aggregate in aggregates if aggregate.task in spec.tasks and aggregate.gap == ""]
          for label, aggregates in aggregates_by_label.items()}
    off = {label: [aggregate for aggregate in aggregates if aggregate.task in spec.tasks and aggregate.gap]
           for label, aggregates in aggregates_by_label.items()}
    return on, off


def _off_protocol_table(spec: TableSpec, off: Mapping[str, Sequence[TaskAggregate]], whose: str) -> Table | None:
    """The results made with other values than ``whose`` protocol, each differing value named."""
    used_off = [aggregate for aggregates in off.values() for aggregate in aggregates]
    if not used_off:
        return None
    headers = ["Backbone", *(column.header for column in spec.columns), *(["Engine"] if spec.engine_rows else []),
               f"Differs from {whose} protocol"]
    return Table(key=f"{spec.key}_off_protocol", title=f"{spec.title}: not {whose} protocol", headers=headers,
                 rows=_measured_rows(spec, off, True),
                 notes=[OFF_PROTOCOL_NOTE.format(whose=whose), *_notes(spec, used_off)])


def build_paper_table(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[Table]:
    """The paper-style table (paper rows, then protocol-true results) and, when some results used other values,
    a second table of those, headed as not the paper's protocol, naming each differing value."""
    on, off = _split_by_protocol(spec, aggregates_by_label)
    published = _published_rows(spec)
    main_methods = [method for method in MAIN_PUBLISHED_METHODS if method in published]
    other_methods = [method for method in published if method not in MAIN_PUBLISHED_METHODS]
    headers = ["Method", *(column.header for column in spec.columns), "Engine" if spec.engine_rows else "Source"]
    used_on = [aggregate for aggregates in on.values() for aggregate in aggregates]
    notes = _notes(spec, used_on)
    if published_results()[spec.published_table].get("protocol"):
        notes.insert(0, f"Paper rows: {published_results()[spec.published_table]['protocol']}.")
    secondary = None
    if other_methods:
        secondary = Table(key=f"{spec.key}_other_methods", title=f"{spec.title}: other published methods",
                          headers=headers, rows=_published_table_rows(spec, published, other_methods),
                          paper_rows=len(other_methods))
    tables = [Table(key=spec.key, title=spec.title, headers=headers,
                    rows=_published_table_rows(spec, published, main_methods) + _measured_rows(spec, on, False),
                    notes=notes, secondary=secondary, paper_rows=len(main_methods), published=published,
                    published_table=spec.published_table)]
    off_table = _off_protocol_table(spec, off, PAPER)
    return tables + ([off_table] if off_table else [])


def build_cited_table(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[Table]:
    """A task compared with a peer library's number: the cited row, then the results made with its protocol, and
    a second table of the results made with other values."""
    cited = spec.cited
    assert cited is not None and cited.comparable
    on, off = _split_by_protocol(spec, aggregates_by_label)
    headers = ["Method", *(column.header for column in spec.columns), "Source"]
    cited_row = [cited.method, *(format_published(cited.values.get(column.metric)) for column in spec.columns),
                 CITED_SOURCE]
    used_on = [aggregate for aggregates in on.values() for aggregate in aggregates]
    notes = [f"Cited row: {cited.source}." + (f" {cited.note}" if cited.note else ""), *_notes(spec, used_on)]
    table = Table(key=spec.key, title=spec.title, headers=headers, rows=[cited_row, *_measured_rows(spec, on, False)],
                  notes=notes, paper_rows=1, published={cited.method: dict(cited.values)})
    off_table = _off_protocol_table(spec, off, CITED)
    return [table] + ([off_table] if off_table else [])


def build_task_table(spec: TableSpec, aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> Table:
    """The table of a task outside the paper's tables, with a column saying whether its protocol was followed."""
    headers = ["Backbone", *(column.header for column in spec.columns), *(["Engine"] if spec.engine_rows else []),
               "Protocol"]
    used = [aggregate for aggregates in aggregates_by_label.values() for aggregate in aggregates
            if aggregate.task in spec.tasks]
    notes = _notes(spec, used)
    if spec.cited is not None:  # published with a protocol this project cannot follow: named, never compared
        values = ", ".join(f"{metric} {value:.2f}" for metric, value in spec.cited.values.items())
        notes.insert(0, f"Published figure, not comparable: {spec.cited.method} {values} ({spec.cited.source}); "
                        f"{spec.cited.note}")
    return Table(key=spec.key, title=spec.title, headers=headers, rows=_measured_rows(spec, aggregates_by_label, True),
                 notes=notes)


def _other_results_table(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]], known: set[str]) -> Table | None:
    rows = []
    for label, aggregates in aggregates_by_label.items():
        for aggregate in aggregates:
            if aggregate.task in known:
                continue
            for metric, stat in aggregate.metrics.items():
                engine = engine_description(aggregate.engine, aggregate.results)
                rows.append([label, aggregate.task, f"{aggregate.dataset}/{aggregate.split}",
                             aggregate.layer or MISSING, engine, metric, format_stat(stat)])
    if not rows:
        return None
    return Table(key="other_results", title="Results of tasks this version does not register",
                 headers=["Backbone", "Task", "Dataset/split", "Layer", "Engine", "Metric", "Value"], rows=rows)


def _reported_metrics(spec: TaskSpec, aggregates: Sequence[TaskAggregate]) -> list[str]:
    present = {metric for aggregate in aggregates if aggregate.task == spec.name for metric in aggregate.metrics
               if not metric.endswith(WITHIN_RUN_STD_SUFFIX)}
    return [metric for metric in spec.metrics if metric in present] + sorted(present - set(spec.metrics))


def build_tables(aggregates_by_label: Mapping[str, Sequence[TaskAggregate]]) -> list[Table]:
    """Every table of the report in order: the paper's tables that have results (each followed by its
    off-protocol results), one table per other task that has results (a cited number's table followed by its
    off-protocol results), then results of tasks not in the registry."""
    tasks = all_tasks()
    everything = [aggregate for aggregates in aggregates_by_label.values() for aggregate in aggregates]
    ran = {aggregate.task for aggregate in everything}
    tables = [table for spec in paper_table_specs(tasks) if spec.tasks & ran
              for table in build_paper_table(spec, aggregates_by_label)]
    for spec in tasks.values():
        metrics = _reported_metrics(spec, everything)
        if spec.paper is None and metrics:
            table_spec = task_table_spec(spec, metrics)
            if spec.cited is not None and spec.cited.comparable:
                tables.extend(build_cited_table(table_spec, aggregates_by_label))
            else:
                tables.append(build_task_table(table_spec, aggregates_by_label))
    other = _other_results_table(aggregates_by_label, set(tasks))
    return tables + ([other] if other else [])
