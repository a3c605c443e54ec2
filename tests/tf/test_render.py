"""Text and HTML views (``tfnp_inspect.views.render``) of real traces recorded from TensorFlow."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import tensorflow as tf

import tfnp_inspect as npi
from tfnp_inspect.views import render

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::tfnp_inspect.ViolationWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning"),
]

HOSTILE = '<script>alert("x")</script>'


def mutate(x):
    x[0] = 100.0
    return x * 2


def plain(x):
    return x + 1


@tf.function
def run_both(x):
    a = tf.numpy_function(mutate, [x], tf.float32)
    return tf.numpy_function(plain, [a], tf.float32)


@pytest.fixture
def mutating_trace():
    """Three graph calls of ``mutate`` (one violation each) and three of ``plain``."""
    with npi.trace(capture="full") as recorded:
        for _ in range(3):
            run_both(tf.constant([1.0, 2.0, 3.0]))
    return recorded


def test_units_are_human():
    assert render.human_duration(512) == "512 ns"
    assert render.human_duration(1_500) == "1.50 µs"
    assert render.human_duration(42_000) == "42.0 µs"
    assert render.human_duration(2_500_000) == "2.50 ms"
    assert render.human_duration(3_210_000_000) == "3.21 s"
    assert render.human_duration(math.nan) == "–"
    assert render.human_bytes(512) == "512 B"
    assert render.human_bytes(1536) == "1.50 KiB"
    assert render.human_bytes(64 << 20) == "64.0 MiB"
    assert render.human_bytes(3 << 40) == "3.00 TiB"


def test_summary_text_has_the_table_and_grouped_violations(mutating_trace):
    text = render.summary_text(render.summarize(mutating_trace))
    stats = mutating_trace.stats()
    seqs = [v.seq for v in mutating_trace.violations]
    site = mutating_trace.violations[0].call_site

    assert text.startswith("tfnp_inspect: 6 calls of 2 functions · 3 violations")
    header, rule, *rows = text.split("\n\n")[1].splitlines()
    assert header.split() == [
        "function", "calls", "errors", "mean", "p50", "p99", "max", "bytes", "in", "bytes", "out", "violations",
    ]
    assert set(rule) <= {"-", " "}
    by_name = {row.split()[0]: row for row in rows}
    assert by_name["mutate"].split()[1:3] == ["3", "0"]
    assert by_name["mutate"].endswith("mutated-input ×3")
    assert render.human_duration(stats["mutate"].max_ns) in by_name["mutate"]
    assert render.human_bytes(36) in by_name["mutate"]  # 3 calls x 3 float32
    assert not by_name["plain"].endswith("×3")
    # one entry for the three calls that broke the contract at the same place
    assert f"[mutated-input] mutate, calls #{seqs[0]}, #{seqs[1]}, #{seqs[2]} at {site}" in text
    assert text.count(mutating_trace.violations[0].message) == 1


def test_summary_html_escapes_and_carries_the_same_facts(mutating_trace):
    page = render.summary_html(render.summarize(mutating_trace))
    violation = mutating_trace.violations[0]

    assert page.startswith("<style>") and 'class="tfnp-report"' in page
    assert "var(--jp-ui-font-color1" in page and "var(--jp-border-color2" in page
    assert '<span class="tag warn">mutated-input ×3</span>' in page
    assert f"<td>{violation.call_site}</td>" in page
    assert re.search(r"<td>mutate</td><td class=\"num\">3</td>", page)


def test_trace_repr_is_concise_and_its_html_is_the_summary(mutating_trace):
    text = repr(mutating_trace)
    assert text.splitlines()[0] == "tfnp_inspect: 6 calls of 2 functions · 3 violations"
    assert len(text.splitlines()) == 5  # header, column names, rule, two functions
    assert mutating_trace._repr_html_() == render.summary_html(render.summarize(mutating_trace))
    assert repr(mutating_trace.stats()) == "\n".join(text.splitlines()[1:])


def test_quiet_and_filter(mutating_trace):
    def only_plain(name):
        return name == "plain"

    quiet = render.summary_text(render.summarize(mutating_trace, quiet=True))
    assert quiet.startswith("3 violations:") and "bytes in" not in quiet
    filtered = render.summary_text(render.summarize(mutating_trace, include=only_plain))
    assert "1 of 2 functions match the filter" in filtered
    assert "mutate" not in filtered and "No violations." in filtered
    quiet_and_clean = render.summarize(mutating_trace, quiet=True, include=only_plain)
    assert render.summary_text(quiet_and_clean) == render.summary_html(quiet_and_clean) == ""


def test_dropped_calls_are_announced():
    with npi.trace(capacity=2) as recorded:
        for value in range(5):
            npi.numpy_function(plain, [np.float32(value)], tf.float32)
    header = repr(recorded).splitlines()[0]
    assert "the buffer kept the last 2 of 5 calls (capacity 2); the table counts all" in header
    assert re.search(r"^plain\s+5\s+0", repr(recorded.stats()), re.MULTILINE)


def test_user_text_is_escaped_everywhere():
    def hostile(x):
        raise ValueError(HOSTILE + x.item().decode())

    hostile.__qualname__ = HOSTILE
    with npi.trace(capture="full") as recorded:
        with pytest.raises(ValueError):
            npi.numpy_function(hostile, [tf.constant("<img src=x onerror=alert(1)>")], tf.string)
    (invocation,) = recorded.invocations
    pages = [
        render.summary_html(render.summarize(recorded)),
        render.invocation_html(invocation),
        render.invocations_html(recorded.invocations),
        render.array_html(invocation.inputs[0]),
        render.stats_html(recorded.stats()),
        recorded.stats()[HOSTILE]._repr_html_(),
    ]
    for page in pages:
        assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[1]  # the string tensor's preview
    assert "raised ValueError: &lt;script&gt;" in pages[1]  # the error message and traceback


def test_long_arrays_are_summarised_not_dumped():
    with npi.trace(capture="full") as recorded:
        npi.numpy_function(plain, [np.arange(100_000, dtype=np.float64)], tf.float64)
    (invocation,) = recorded.invocations
    page = invocation._repr_html_()

    preview = render.array_preview(invocation.inputs[0].data)
    assert preview.startswith("[0.0000e+00 1.0000e+00 2.0000e+00 ...") and len(preview) < 100
    assert f"<pre>{preview}</pre>" in page
    assert len(page) < 8_000
    long_string = np.array([b"x" * 100_000], dtype=object)
    assert len(render.array_preview(long_string)) == render.PREVIEW_MAX_CHARS + 2


def test_array_html_shows_stats_and_memory_notes():
    with npi.trace() as recorded:  # 'summary' capture: statistics, no contents
        run_both(tf.constant([1.0, np.nan, 3.0]))
    mutated = next(inv for inv in recorded.invocations if inv.func_name == "mutate")
    page = mutated.inputs[0]._repr_html_()

    assert "min 1, max 3, mean 2, 1 NaN" in page
    assert "view of a TF tensor buffer" in page
    assert f"fingerprint {mutated.inputs[0].fingerprint:016x}" in page


def test_violation_hint_and_function_stats_html(mutating_trace):
    violation = mutating_trace.violations[0]
    page = violation._repr_html_()
    assert f"mutate, call #{violation.seq} (input 0) at {violation.call_site}" in page

    with npi.trace() as recorded:
        npi.numpy_function(lambda x: x / 0, [np.ones(2, np.float32)], tf.float32)
    (hint,) = recorded.hints
    assert hint.kind == "nonfinite"
    assert '<span class="tag ok">nonfinite</span>' in hint._repr_html_()
    assert "1 hint" in render.summary_html(render.summarize(recorded))

    stats = mutating_trace.stats()["mutate"]
    bars = re.findall(r'<div class="bar" title="[^"]+: (\d+)"', stats._repr_html_())
    assert sum(map(int, bars)) == stats.calls == 3


def test_invocation_list_and_empty_views():
    assert render.invocations_text([]) == "(no invocations)"
    with npi.trace() as recorded:
        pass
    summary = render.summarize(recorded)
    text = render.summary_text(summary)
    assert text.splitlines()[0] == "tfnp_inspect: 0 calls of 0 functions · 0 violations"
    assert "(no numpy_function calls recorded)" in text
    assert "No numpy_function calls recorded." in render.summary_html(summary)
