"""Text and HTML views of traces, stats, invocations, violations, hints, arrays and replays.

Pure string building (no IPython): the core's ``__repr__``/``_repr_html_`` and the magics call
these. User-controlled text reaches HTML only through :func:`_text` (``html.escape``), arrays
are previewed with numpy's summarising printer, and every HTML view carries its own small
style sheet, scoped to ``.tfnp-report`` and built on JupyterLab's theme variables (with
fallbacks), so it reads well in light and dark themes and outside JupyterLab.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from ..model.records import ArrayInfo, Hint, Invocation, Violation, type_label
from ..model.stats import FunctionStats, TraceStats, bucket_bounds
from ..recording.probe import ORIGIN_UNDECLARED as UNDECLARED_ORIGIN
from ..recording.replay import ReplayResult
from ..recording.trace import Trace
from .diagnosis import Section, sections, shapes_section
from .format import (
    PREVIEW_MAX_CHARS,
    array_notes,
    array_preview,
    human_bytes,
    human_duration,
    plural,
)

__all__ = [  # what the magics and users read from here (units and previews live in .format)
    "PREVIEW_MAX_CHARS",
    "NameFilter",
    "Summary",
    "array_html",
    "array_preview",
    "human_bytes",
    "human_duration",
    "invocation_html",
    "invocations_html",
    "invocations_text",
    "panel_text",
    "plural",
    "shapes_html",
    "shapes_text",
    "stats_html",
    "stats_report_html",
    "stats_report_text",
    "stats_text",
    "summarize",
    "summary_html",
    "summary_text",
    "trace_html",
    "trace_summary_text",
    "trace_text",
    "violations_html",
    "violations_text",
]

#: Summaries list at most this many groups of violations (all are in ``trace.violations``).
MAX_LISTED_VIOLATIONS = 50
#: A group of violations names this many of its calls.
MAX_LISTED_CALLS = 5

#: Decides which function names a summary includes (the magics' ``--filter``).
NameFilter = Callable[[str], bool]

# -- HTML building blocks -------------------------------------------------------------------------


class _Html(str):
    """A fragment that is already escaped HTML (everything else is escaped on output)."""


def _text(value: Any) -> str:
    return value if isinstance(value, _Html) else html.escape(str(value))


# Theme variables of JupyterLab first; the fallbacks work on light and dark backgrounds alike.
_STYLE = """<style>
.tfnp-report { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color1, inherit); line-height: 1.4; }
.tfnp-report table { border-collapse: collapse; margin: 2px 0 8px 0; color: inherit; background: transparent; }
.tfnp-report th, .tfnp-report td { padding: 2px 8px; text-align: left; vertical-align: top;
  border-bottom: 1px solid var(--jp-border-color2, rgba(127, 127, 127, 0.35)); }
.tfnp-report th { font-weight: 600; white-space: nowrap;
  background: var(--jp-layout-color2, rgba(127, 127, 127, 0.12)); }
.tfnp-report th.num, .tfnp-report td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.tfnp-report .title { font-weight: 600; margin: 6px 0 4px 0; }
.tfnp-report .tag { white-space: nowrap; }
.tfnp-report .muted { color: var(--jp-ui-font-color2, inherit); }
.tfnp-report .warn { color: var(--jp-warn-color1, #c77700); font-weight: 600; }
.tfnp-report .error { color: var(--jp-error-color1, #d32f2f); font-weight: 600; }
.tfnp-report .ok { color: var(--jp-success-color1, #388e3c); font-weight: 600; }
.tfnp-report pre { font-family: var(--jp-code-font-family, ui-monospace, monospace);
  font-size: var(--jp-code-font-size, 12px); margin: 2px 0; padding: 4px 6px; white-space: pre-wrap;
  word-break: break-all; color: inherit; background: var(--jp-layout-color2, rgba(127, 127, 127, 0.12)); }
.tfnp-report .bars { display: flex; align-items: flex-end; gap: 1px; height: 42px; }
.tfnp-report .bar { width: 6px; background: var(--jp-brand-color1, #1976d2); }
</style>"""


def _report(*parts: str) -> str:
    return f'{_STYLE}<div class="tfnp-report">{"".join(parts)}</div>'


def _title(text: str, tone: str = "") -> str:
    return f'<div class="title {tone}">{_text(text)}</div>'


def _muted(text: str) -> str:
    return f'<div class="muted">{_text(text)}</div>'


def _pre(text: str) -> _Html:
    return _Html(f"<pre>{_text(text)}</pre>")


def _tag(text: Any, tone: str) -> _Html:
    return _Html(f'<span class="tag {tone}">{_text(text)}</span>')


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    right = set(numeric)

    def cell(tag: str, index: int, value: Any) -> str:
        css = ' class="num"' if index in right else ""
        return f"<{tag}{css}>{_text(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    right = set(numeric)
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


# -- per-function stats ---------------------------------------------------------------------------

_STATS_HEADERS = ("function", "calls", "errors", "mean", "p50", "p99", "max", "bytes in", "bytes out", "violations")
_STATS_NUMERIC = range(1, 9)


def _violation_counts(counts: Counter) -> str:
    return ", ".join(f"{kind} ×{n}" for kind, n in sorted(counts.items()))


def _stats_row(stats: FunctionStats) -> list[Any]:
    return [
        stats.func_name,
        stats.calls,
        stats.errors,
        human_duration(stats.mean_ns),
        human_duration(stats.p50_ns),
        human_duration(stats.p99_ns),
        human_duration(stats.max_ns),
        human_bytes(stats.bytes_in),
        human_bytes(stats.bytes_out),
        _violation_counts(stats.violations),
    ]


def stats_text(stats: TraceStats) -> str:
    return _stats_table_text(list(stats.values()))


def stats_html(stats: TraceStats) -> str:
    return _report(_stats_table_html(list(stats.values())))


def _stats_table_text(per_function: Sequence[FunctionStats]) -> str:
    if not per_function:
        return "(no numpy_function calls recorded)"
    return _text_table(_STATS_HEADERS, [_stats_row(s) for s in per_function], _STATS_NUMERIC)


def _stats_table_html(per_function: Sequence[FunctionStats]) -> str:
    if not per_function:
        return _muted("No numpy_function calls recorded.")
    rows = []
    for stats in per_function:
        row = _stats_row(stats)
        if stats.errors:
            row[2] = _tag(row[2], "error")
        if stats.violations:
            row[-1] = _tag(row[-1], "warn")
        rows.append(row)
    return _html_table(_STATS_HEADERS, rows, _STATS_NUMERIC)


def function_stats_html(stats: FunctionStats) -> str:
    """One function's row plus its duration histogram (one bar per non-empty bucket)."""
    table = _stats_table_html([stats])
    counts = stats.histogram.counts
    if not counts:
        return _report(table)
    tallest = max(counts.values())
    bars = "".join(
        f'<div class="bar" title="{_text(_bucket_label(bucket_bounds(b)))}: {n}" '
        f'style="height: {max(2, round(40 * n / tallest))}px;"></div>'
        for b, n in sorted(counts.items())
    )
    low, high = bucket_bounds(min(counts))[0], bucket_bounds(max(counts))[1]
    span = _muted(f"durations from {human_duration(low)} to {human_duration(high)}")
    return _report(table, f'<div class="bars">{bars}</div>', span)


def _bucket_label(bounds: tuple[int, int]) -> str:
    return f"{human_duration(bounds[0])} – {human_duration(bounds[1])}"


# -- violations and hints -------------------------------------------------------------------------


class ViolationGroup(NamedTuple):
    """The same contract broken the same way at the same place by several calls: listed once."""

    first: Violation
    seqs: list[int]


def group_violations(violations: Iterable[Violation]) -> list[ViolationGroup]:
    groups: dict[tuple[str, str, str | None, str | None], ViolationGroup] = {}
    for v in violations:
        key = (v.kind, v.func_name, v.call_site, v.argument)
        group = groups.get(key)
        if group is None:
            groups[key] = ViolationGroup(v, [v.seq])
        else:
            group.seqs.append(v.seq)
    return list(groups.values())


def _calls(seqs: Sequence[int]) -> str:
    listed = ", ".join(f"#{s}" for s in seqs[:MAX_LISTED_CALLS])
    return listed if len(seqs) <= MAX_LISTED_CALLS else f"{listed} … ({plural(len(seqs), 'call')})"


def _listed(groups: list[ViolationGroup]) -> tuple[list[ViolationGroup], int]:
    return groups[:MAX_LISTED_VIOLATIONS], max(0, len(groups) - MAX_LISTED_VIOLATIONS)


def _more_violations(more: int) -> str:
    return f"… and {more} more {'place' if more == 1 else 'places'} (all violations are in trace.violations)"


def violations_text(violations: Sequence[Violation]) -> str:
    if not violations:
        return "No violations."
    shown, more = _listed(group_violations(violations))
    lines = [f"{plural(len(violations), 'violation')}:"]
    for first, seqs in shown:
        where = f" at {first.call_site}" if first.call_site else ""
        calls = "call" if len(seqs) == 1 else "calls"
        lines.append(f"  [{first.kind}] {first.func_name}, {calls} {_calls(seqs)}{where}")
        lines.append(f"      {first.message}")
    if more:
        lines.append("  " + _more_violations(more))
    return "\n".join(lines)


def violations_html(violations: Sequence[Violation]) -> str:
    return _report(_violations_section_html(violations))


_VIOLATION_HEADERS = ("kind", "function", "calls", "call site", "message")


def _violations_section_html(violations: Sequence[Violation]) -> str:
    if not violations:
        return _title("No violations.", "ok")
    shown, more = _listed(group_violations(violations))
    rows = [
        [_tag(first.kind, "warn"), first.func_name, _calls(seqs), first.call_site or "–", first.message]
        for first, seqs in shown
    ]
    parts = [_title(plural(len(violations), "violation"), "warn"), _html_table(_VIOLATION_HEADERS, rows)]
    if more:
        parts.append(_muted(_more_violations(more)))
    return "".join(parts)


def violation_html(violation: Violation) -> str:
    argument = f" ({violation.argument})" if violation.argument else ""
    where = f" at {violation.call_site}" if violation.call_site else ""
    return _report(
        f"<div>{_tag(violation.kind, 'warn')} {_text(violation.func_name)}, "
        f"call #{violation.seq}{_text(argument)}{_text(where)}</div>",
        f"<div>{_text(violation.message)}</div>",
    )


def hint_html(hint: Hint) -> str:
    return _report(
        f"<div>{_tag(hint.kind, 'ok')} {_text(hint.func_name)}, call #{hint.seq}</div>",
        f"<div>{_text(hint.message)}</div>",
    )


def _distinct_hints(hints: Iterable[Hint]) -> list[Hint]:
    """Hints repeat on every call of a function: keep the first of each (function, kind)."""
    seen: dict[tuple[str, str], Hint] = {}
    for hint in hints:
        seen.setdefault((hint.func_name, hint.kind), hint)
    return list(seen.values())


def _hints_text(hints: Sequence[Hint]) -> str:
    lines = [f"{plural(len(hints), 'hint')}:"]
    for h in hints:
        lines.append(f"  [{h.kind}] {h.func_name}" + (f", first at call #{h.seq}" if h.seq else ""))
        lines.append(f"      {h.message}")
    return "\n".join(lines)


def _hints_html(hints: Sequence[Hint]) -> str:
    rows = [[_tag(h.kind, "ok"), h.func_name, f"#{h.seq}" if h.seq else "–", h.message] for h in hints]
    table = _html_table(("hint", "function", "first call", "message"), rows)
    return f"<details><summary>{_text(plural(len(hints), 'hint'))}</summary>{table}</details>"


# -- traces and summaries -------------------------------------------------------------------------


def _header(trace: Trace, per_function: Sequence[FunctionStats], functions: int) -> str:
    """Counts of the functions shown (``functions``: how many there are without a filter)."""
    calls = sum(s.calls for s in per_function)
    violations = sum(sum(s.violations.values()) for s in per_function)
    parts = [
        f"tfnp_inspect: {plural(calls, 'call')} of {plural(len(per_function), 'function')}",
        plural(violations, "violation"),
    ]
    if len(per_function) != functions:
        parts.append(f"{len(per_function)} of {plural(functions, 'function')} match the filter")
    if trace.dropped:
        parts.append(
            f"the buffer kept the last {len(trace)} of {plural(trace.total, 'call')} "
            f"(capacity {trace.capacity}); the table counts all"
        )
    if trace.source:
        parts.append(f"loaded from {trace.source}")
    return " · ".join(parts)


def _filtered(items: Iterable[Any], include: NameFilter | None) -> list[Any]:
    return [x for x in items if include is None or include(x.func_name)]


def undeclared_note(trace: Trace) -> str:
    """Calls of ops built before ``import tfnp_inspect`` (no declaration): which checks were skipped.

    Empty when every recorded call had its declaration: a summary never says "No violations"
    over calls whose Tout and stateless contracts could not be checked without saying so.
    """
    counts: Counter = Counter(
        inv.func_name for inv in trace.invocations if inv.site.origin == UNDECLARED_ORIGIN
    )
    if not counts:
        return ""
    functions = ", ".join(f"{name} ({plural(n, 'call')})" for name, n in counts.most_common())
    return (
        f"{plural(sum(counts.values()), 'call')} observed without a declaration: {functions}. Their "
        "ops were built before tfnp_inspect was imported, so TensorFlow kept no stateful flag, Tout "
        "or call site for them and the tout-mismatch, nondeterministic and hidden-state checks were "
        "skipped. Import tfnp_inspect (or run %load_ext tfnp_inspect) before building the graph, "
        "then re-run the cell that defines it, to get every check."
    )


def trace_text(trace: Trace) -> str:
    """``repr(trace)``, concise: a header line with the counts, then the per-function table."""
    per_function = list(trace.stats().values())
    note = undeclared_note(trace)
    table = _stats_table_text(per_function)
    return "\n".join(filter(None, (_header(trace, per_function, len(per_function)), note, table)))


def trace_summary_text(trace: Trace) -> str:
    """``print(trace)``: what ``%%npfunc`` shows after a cell (the counts, the per-function
    table, the violations with their call sites, the hints), as :func:`trace_html` does."""
    return summary_text(summarize(trace))


def trace_html(trace: Trace) -> str:
    return summary_html(summarize(trace))


class Summary(NamedTuple):
    """What ``%%npfunc`` shows after the cell, gathered once and rendered as text and HTML."""

    header: str
    per_function: list[FunctionStats]
    violations: list[Violation]
    hints: list[Hint]
    quiet: bool  # only the violations (nothing at all when there are none)
    undeclared: str = ""  # see undeclared_note
    diagnosis: Any = None  # shapes, pipeline and retracing (recording.diagnosis.Diagnosis), filtered


def summarize(trace: Trace, quiet: bool = False, include: NameFilter | None = None) -> Summary:
    violations = _filtered(trace.violations, include)
    undeclared = undeclared_note(trace)
    if quiet:
        return Summary("", [], violations, [], True, undeclared)
    stats = trace.stats()
    per_function = [s for name, s in stats.items() if include is None or include(name)]
    diagnosis = trace.diagnosis().filtered(include)
    # per-call hints repeat on every call: the first of each; derived ones are one per op or function
    hints = _distinct_hints(_filtered(trace.recorder.hints(), include)) + diagnosis.hints
    header = _header(trace, per_function, len(stats))
    return Summary(header, per_function, violations, hints, False, undeclared, diagnosis)


def summary_text(summary: Summary) -> str:
    if summary.quiet:
        return "\n\n".join(filter(None, (
            violations_text(summary.violations) if summary.violations else "", summary.undeclared,
        )))
    parts = [summary.header, _stats_table_text(summary.per_function), violations_text(summary.violations)]
    if summary.diagnosis is not None:
        parts[2:2] = map(_section_text, sections(summary.diagnosis))
    if summary.undeclared:
        parts.insert(1, summary.undeclared)
    if summary.hints:
        parts.append(_hints_text(summary.hints))
    return "\n\n".join(parts)


def summary_html(summary: Summary) -> str:
    undeclared = _muted(summary.undeclared) if summary.undeclared else ""
    if summary.quiet:
        if not summary.violations and not undeclared:
            return ""
        listed = _violations_section_html(summary.violations) if summary.violations else ""
        return _report(*filter(None, (listed, undeclared)))
    parts = [
        _title(summary.header),
        undeclared,
        _stats_table_html(summary.per_function),
        _violations_section_html(summary.violations),
    ]
    if summary.diagnosis is not None:
        parts.insert(3, "".join(map(_section_html, sections(summary.diagnosis))))
    if summary.hints:
        parts.append(_hints_html(summary.hints))
    return _report(*parts)


# -- shapes, pipeline and retracing (sections worded in .diagnosis) ----------------------------------


def _section_text(section: Section) -> str:
    if section.lines is not None:
        body = "\n".join(f"  {line}" for line in section.lines)
    else:
        body = _text_table(section.headers, section.rows, section.numeric)
    note = f"\n  ({section.note})" if section.note else ""
    return f"{section.title}:\n{body}{note}"


def _section_html(section: Section) -> str:
    note = _muted(section.note) if section.note else ""
    return _title(section.title) + _html_table(section.headers, section.rows, section.numeric) + note


def stats_report_text(trace: Trace, include: NameFilter | None = None) -> str:
    """``%npfunc stats``: the per-function table, then each op's signature, how the calls
    overlapped (threads, calls in flight, share of the wall time) and retraced call sites."""
    diagnosis = trace.diagnosis().filtered(include)
    per_function = [s for name, s in trace.stats().items() if include is None or include(name)]
    return "\n\n".join([_stats_table_text(per_function), *map(_section_text, sections(diagnosis))])


def stats_report_html(trace: Trace, include: NameFilter | None = None) -> str:
    diagnosis = trace.diagnosis().filtered(include)
    per_function = [s for name, s in trace.stats().items() if include is None or include(name)]
    return _report(_stats_table_html(per_function), *map(_section_html, sections(diagnosis)))


def shapes_text(trace: Trace, include: NameFilter | None = None) -> str:
    """``%npfunc shapes``: the signatures, then per op and output what the calls returned,
    the static shape TF knows and the ``set_shape`` line to add where it knows less."""
    diagnosis = trace.diagnosis().filtered(include)
    if not diagnosis.shapes:
        return "(no numpy_function calls recorded)"
    found = sections(diagnosis)
    return "\n\n".join([_section_text(found[0]), _section_text(shapes_section(diagnosis))])


def shapes_html(trace: Trace, include: NameFilter | None = None) -> str:
    diagnosis = trace.diagnosis().filtered(include)
    if not diagnosis.shapes:
        return _report(_muted("No numpy_function calls recorded."))
    return _report(_section_html(sections(diagnosis)[0]), _section_html(shapes_section(diagnosis)))


# -- invocations ----------------------------------------------------------------------------------

_INVOCATIONS_HEADERS = ("call", "function", "mode", "duration", "inputs", "outputs", "status")


def _signature(arrays: Iterable[ArrayInfo]) -> str:
    return ", ".join(type_label(a.dtype, a.shape) for a in arrays)


def _status(invocation: Invocation) -> str:
    if invocation.error is not None:
        return f"raised {invocation.error.type}"
    if invocation.violations:
        return ", ".join(sorted({v.kind for v in invocation.violations}))
    return "ok"


def _invocation_row(invocation: Invocation) -> list[Any]:
    return [
        f"#{invocation.seq}",
        invocation.func_name,
        invocation.mode,
        human_duration(invocation.duration_ns),
        _signature(invocation.inputs),
        _signature(invocation.outputs),
        _status(invocation),
    ]


def invocations_text(invocations: Sequence[Invocation]) -> str:
    if not invocations:
        return "(no invocations)"
    return _text_table(_INVOCATIONS_HEADERS, [_invocation_row(i) for i in invocations], (0, 3))


#: How many of the newest invocations the panel's text view lists.
PANEL_TEXT_ROWS = 20


def panel_text(trace: Trace, rows: int = PANEL_TEXT_ROWS) -> str:
    """The trace panel as text, for front-ends that cannot draw widgets (a terminal, jupyter
    console, a notebook rendered as text): the summary, then the newest invocations."""
    newest = trace.invocations[-rows:] if rows > 0 else []
    title = f"newest {plural(len(newest), 'invocation')} (of {len(trace)} kept):"
    return "\n\n".join((summary_text(summarize(trace)), title, invocations_text(newest)))


def invocations_html(invocations: Sequence[Invocation]) -> str:
    if not invocations:
        return _report(_muted("No invocations."))
    rows = []
    for invocation in invocations:
        row = _invocation_row(invocation)
        if invocation.error is not None or invocation.violations:
            row[-1] = _tag(row[-1], "error" if invocation.error is not None else "warn")
        rows.append(row)
    return _report(_html_table(_INVOCATIONS_HEADERS, rows, (0, 3)))


def invocation_html(invocation: Invocation) -> str:
    site = invocation.site
    facts = [
        f"{invocation.mode} mode",
        f"took {human_duration(invocation.duration_ns)}",
        f"thread {invocation.thread_name}",
    ]
    if site.op_name:
        facts.append(f"op {site.op_name}")
    if site.stateful is not None:
        facts.append("stateful" if site.stateful else "stateless")
    if site.call_site:
        facts.append(f"called at {site.call_site}")
    if invocation.task:
        facts.append(f"task {invocation.task}")
    parts = [_title(f"#{invocation.seq} {invocation.func_name}"), _muted(" · ".join(facts))]
    labelled = [(f"input {i}", a) for i, a in enumerate(invocation.inputs)]
    labelled += [(f"output {i}", a) for i, a in enumerate(invocation.outputs)]
    if labelled:
        parts.append(_arrays_table_html(labelled))
    if invocation.error is not None:
        parts.append(_title(f"raised {invocation.error}", "error"))
        if invocation.error.traceback:
            parts.append(f"<details><summary>traceback</summary>{_pre(invocation.error.traceback)}</details>")
    parts += [violation_html(v) for v in invocation.violations]
    parts += [hint_html(h) for h in invocation.hints]
    return _report(*parts)


# -- arrays ---------------------------------------------------------------------------------------

_ARRAY_HEADERS = ("", "dtype", "shape", "size", "stats", "notes", "contents")


def _array_stats(info: ArrayInfo) -> str:
    s = info.stats
    if s is None:
        return ""
    if s.elements == s.nan_count + s.inf_count:
        text = "no finite values"
    else:
        text = f"min {s.min:.4g}, max {s.max:.4g}, mean {s.mean:.4g}"
    if s.nan_count:
        text += f", {s.nan_count} NaN"
    if s.inf_count:
        text += f", {s.inf_count} Inf"
    if not s.exact:
        text += f" (from a sample of {s.elements})"
    return text


def _array_cells(label: str, info: ArrayInfo) -> list[Any]:
    if info.data is not None:
        contents: Any = _pre(array_preview(info.data))
    else:
        contents = f"fingerprint {info.fingerprint:016x}" if info.fingerprint is not None else ""
    return [
        label, info.dtype, list(info.shape), human_bytes(info.nbytes), _array_stats(info),
        "; ".join(array_notes(info)), contents,
    ]


def _arrays_table_html(labelled: Sequence[tuple[str, ArrayInfo]]) -> str:
    return _html_table(_ARRAY_HEADERS, [_array_cells(label, info) for label, info in labelled], (3,))


def array_html(info: ArrayInfo) -> str:
    return _report(_arrays_table_html([("array", info)]))


# -- replay ---------------------------------------------------------------------------------------


def _replay_title(result: ReplayResult) -> str:
    invocation = result.invocation
    verdict = "matches the recorded call" if result.matches else "differs from the recorded call"
    return f"replay of #{invocation.seq} {invocation.func_name}: {verdict}"


def replay_text(result: ReplayResult) -> str:
    lines = [_replay_title(result)]
    lines += [f"  - {d}" for d in result.differences]
    lines += [f"  output {i}: {array_preview(o)}" for i, o in enumerate(result.outputs)]
    return "\n".join(lines)


def replay_html(result: ReplayResult) -> str:
    parts = [_title(_replay_title(result), "ok" if result.matches else "warn")]
    if result.differences:
        parts.append("<ul>" + "".join(f"<li>{_text(d)}</li>" for d in result.differences) + "</ul>")
    if result.outputs:
        rows = [[f"output {i}", o.dtype, list(o.shape), _pre(array_preview(o))] for i, o in enumerate(result.outputs)]
        parts.append(_html_table(("", "dtype", "shape", "replayed contents"), rows))
    return _report(*parts)
