"""Text and HTML reports (views/render.py) of fabricated traces."""

from __future__ import annotations

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.views import render

import fabricate


@pytest.fixture
def trace():
    clean = [fabricate.invocation(func="double", duration_ns=1_000 * (i + 1)) for i in range(3)]
    bad = fabricate.invocation(func="<b>mutate</b>", mode="graph")
    bad = bad.replace(violations=[fabricate.violation(bad, message="wrote <script>x</script> in place")])
    failed = fabricate.invocation(func="explode", error=npi.ErrorInfo("ValueError", "no <way>", "Traceback ..."))
    return fabricate.trace_of([*clean, bad, failed])


def test_summary_text_has_counts_table_and_grouped_violations(trace):
    text = render.summary_text(render.summarize(trace))
    assert text.startswith("tfnp_inspect: 5 calls of 3 functions · 1 violation")
    assert "double" in text and "explode" in text
    assert "[mutated-input] <b>mutate</b>, call #" in text and "at model.py:12" in text


def test_html_escapes_every_user_text(trace):
    page = render.summary_html(render.summarize(trace))
    assert "&lt;b&gt;mutate&lt;/b&gt;" in page and "<b>mutate" not in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    detail = render.invocation_html(trace.invocations[-1])
    assert "raised ValueError: no &lt;way&gt;" in detail and "<details><summary>traceback" in detail


def test_quiet_and_filter(trace):
    quiet = render.summarize(trace, quiet=True)
    assert render.summary_text(quiet).startswith("1 violation:")
    only_double = render.summarize(trace, include=lambda name: name == "double")
    assert [s.func_name for s in only_double.per_function] == ["double"]
    assert "1 of 3 functions match the filter" in only_double.header
    assert render.summary_text(render.summarize(fabricate.trace_of([]), quiet=True)) == ""


def test_dropped_calls_are_announced():
    trace = fabricate.trace_of([fabricate.invocation() for _ in range(5)], capacity=2)
    assert "the buffer kept the last 2 of 5 calls (capacity 2)" in render.summarize(trace).header
    assert trace.stats().calls == 5


def test_repr_of_a_trace_is_the_short_table(trace):
    text = repr(trace)
    assert text.splitlines()[0].startswith("tfnp_inspect: 5 calls") and "p99" in text
    assert trace._repr_html_() == render.summary_html(render.summarize(trace))


def test_invocation_list_and_empty_views(trace):
    listed = render.invocations_text(trace.invocations)
    assert "float64[4]" in listed and "raised ValueError" in listed and "mutated-input" in listed
    assert render.invocations_text([]) == "(no invocations)"
    assert "No invocations." in render.invocations_html([])
    assert render.violations_text([]) == "No violations."
    assert "No numpy_function calls recorded." in render.stats_html(npi.TraceStats({}))


def test_array_html_shows_stats_notes_and_preview():
    inv = fabricate.invocation([np.array([1.0, np.nan, 3.0])], capture="full")
    page = render.array_html(inv.inputs[0])
    assert "min 1, max 3, mean 2, 1 NaN" in page
    assert "<pre>[ 1. nan  3.]</pre>" in page
    summary_only = fabricate.invocation([np.arange(3.0)]).inputs[0]
    assert f"fingerprint {summary_only.fingerprint:016x}" in render.array_html(summary_only)


def test_records_render_themselves_through_the_seam(trace):
    inv = trace.invocations[0]
    assert inv._repr_html_() == render.invocation_html(inv)
    violation = trace.violations[0]
    assert "mutated-input" in violation._repr_html_()
    stats = trace.stats()["double"]
    assert 'class="bars"' in stats._repr_html_()
