"""Shapes, overlaps and the hints derived from them, on fabricated records (no TensorFlow).

The TensorFlow-backed twins (real tf.data, tf.function and Keras programs) are in
``tests/tf/test_shapes_pipeline_retrace.py``.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tfnp_inspect as npi
from tfnp_inspect.checks.pipeline import serialized_hint
from tfnp_inspect.checks.retracing import RETRACED_OPS, retraced_hint
from tfnp_inspect.checks.shapes import unknown_shape_hint
from tfnp_inspect.model.pipeline import LATENESS_NS, Concurrency
from tfnp_inspect.model.records import (
    C_ERROR,
    C_PROCESS,
    C_SITE,
    C_START_NS,
    C_THREAD_ID,
    C_VIOLATIONS,
    S_FUNC_NAME,
    ProcessInfo,
)
from tfnp_inspect.model.shapes import MAX_DISTINCT_SHAPES, PositionShapes, SiteShapes, signature
from tfnp_inspect.views.panel import state

import fabricate

T0 = 1_700_000_000_000_000_000
_seqs = itertools.count(1)


def raw(shape: tuple[int, ...], dtype: object = np.float32) -> tuple:
    """A RawArray row with only what the shape contract reads."""
    return fabricate.raw_array(np.zeros(shape, dtype), capture="none")


def graph_call(outputs, *, static=None, inputs=((),), func="load", seq=None, start=T0, duration=1_000, thread=1,
               error=None):
    """A graph-mode call of ``func`` whose op's static shapes are ``static``."""
    inv = fabricate.invocation(
        [np.zeros(shape, np.float32) for shape in inputs], [np.zeros(s, np.uint8) for s in outputs], func=func,
        mode="graph", seq=next(_seqs) if seq is None else seq, start_ns=start, duration_ns=duration, capture="none",
        error=error,
    )
    return inv.replace(site=inv.site._replace(static_shapes=static), thread_id=thread, thread_name=f"Dummy-{thread}")


def test_a_position_keeps_the_most_specific_shape_every_call_had():
    position = PositionShapes()
    for _ in range(3):
        position.add((224, 224, 3), np.dtype(np.uint8))
    assert position.dims == (224, 224, 3) and position.label == "uint8[224,224,3]"
    assert position.add((200, 224, 3), np.dtype(np.uint8)) is True
    assert position.dims == (None, 224, 3) and position.label == "uint8[None,224,3]"
    assert position.add((200, 224, 3), np.dtype(np.uint8)) is False  # seen before: nothing to merge
    assert position.distinct == {(224, 224, 3): 3, (200, 224, 3): 2} and position.seen == 5
    position.add((224, 224), np.dtype(np.uint8))
    assert position.dims is None and position.rank_varies and position.label == "uint8[...]"


def test_distinct_shapes_are_bounded_and_counts_stay_exact():
    position = PositionShapes()
    for n in range(40):
        position.add((n, 3), np.dtype(np.float32))
    assert len(position.distinct) == MAX_DISTINCT_SHAPES
    assert position.others == 40 - MAX_DISTINCT_SHAPES and position.seen == 40
    assert position.dims == (None, 3)
    assert PositionShapes.from_dict(position.to_dict()) == position


def test_signature_names_dtypes_shapes_and_calls():
    site = SiteShapes("load_image", "data.py:7", "graph", "wrapper", None)
    for n in range(5000):
        site.add(n + 1, [raw((), object)], [raw((224, 224, 3), np.uint8), raw((), np.int64)], False)
    assert signature(site) == "load_image(string[]) -> uint8[224,224,3], int64[]  (5,000 calls)"
    varying = SiteShapes("crop", None, "graph", "wrapper", None)
    for n in (4, 5):
        varying.add(n, [raw((n, 3))], [raw((n, 3))], False)
    assert signature(varying) == "crop(float32[None,3]) -> float32[None,3]  (2 calls)"
    assert SiteShapes.from_dict(site.to_dict()) == site


def test_recorder_counts_every_call_across_eviction():
    calls = [graph_call([(8, 8, 3)], seq=n + 1, start=T0 + n * 10_000) for n in range(1000)]
    trace = fabricate.trace_of(calls, capacity=10)
    assert len(trace) == 10 and trace.dropped == 990
    (site,) = trace.recorder.shapes()
    assert site.calls == 1000 and site.outputs[0].distinct == {(8, 8, 3): 1000}
    (figures,) = trace.recorder.pipeline()
    assert figures.calls == 1000 and figures.busy_ns == 1000 * 1_000 and figures.max_in_flight == 1


def test_unknown_shape_hint_waits_for_agreeing_calls_and_follows_later_ones():
    site = SiteShapes("load", "data.py:7", "graph", "wrapper", None)
    site.add(1, [], [raw((224, 224, 3))], False)
    site.add(2, [], [raw((224, 224, 3))], False)
    assert unknown_shape_hint(site) is None  # two calls are not enough
    site.add(3, [], [raw((224, 224, 3))], False)
    hint = unknown_shape_hint(site)
    assert hint is not None and hint.kind == "unknown-shape" and hint.seq == 3
    assert "`y.set_shape([224, 224, 3])`" in hint.message and "tf.ensure_shape(y, [224, 224, 3])" in hint.message
    site.add(4, [], [raw((224, 224, 3))], False)
    assert unknown_shape_hint(site).seq == 3  # agreeing calls change nothing
    site.add(5, [], [raw((180, 224, 3))], False)
    revised = unknown_shape_hint(site)
    assert revised.seq == 5 and "`y.set_shape([None, 224, 3])`" in revised.message and "None: the dimensions" in revised.message


def test_unknown_shape_hint_fills_in_what_the_static_shape_lacks_only():
    partly = SiteShapes("load", None, "graph", "wrapper", ((None, None, 3), ()))
    complete = SiteShapes("load", None, "graph", "wrapper", ((224, 224, 3), ()))
    eager = SiteShapes("load", None, "eager", "wrapper", None)
    generator = SiteShapes("gen", None, "graph", "generator", None)
    for site in (partly, complete, eager, generator):
        for n in range(3):
            site.add(n + 1, [], [raw((224, 224, 3)), raw(())], False)
    hint = unknown_shape_hint(partly)
    assert "`y0.set_shape([224, 224, 3])`" in hint.message and "y1" not in hint.message.split("Add after")[1].split(":")[1]
    assert "knows it only as [None, None, 3]" in hint.message
    assert unknown_shape_hint(complete) is None
    assert unknown_shape_hint(eager) is None  # eager tensors have their shapes
    assert unknown_shape_hint(generator) is None  # from_generator sets its output_signature itself


def figures_of(intervals, threads=(1, 2)):
    """Concurrency of calls (start offset, duration) alternating between ``threads``."""
    figures = Concurrency("f")
    for (start, duration), thread in zip(intervals, itertools.cycle(threads), strict=False):
        figures.add(T0 + start, duration, thread, f"Dummy-{thread}")
    figures.settle()
    return figures


def test_overlap_figures():
    back_to_back = figures_of([(n * 1_000, 900) for n in range(20)])
    assert back_to_back.max_in_flight == 1 and back_to_back.mean_in_flight == 1.0
    assert back_to_back.busy_ns == 20 * 900 and back_to_back.thread_count == 2
    assert abs(back_to_back.busy_share - 18_000 / 19_900) < 1e-9
    pairs = figures_of([(n // 2 * 1_000, 1_000) for n in range(20)])
    assert pairs.max_in_flight == 2 and pairs.mean_in_flight == 2.0


def test_a_call_stored_after_later_ones_still_counts_its_overlaps():
    figures = Concurrency("f")
    for n in range(10):  # short calls on one thread, folded first
        figures.add(T0 + n * 1_000, 500, 1, "a")
    figures.settle()
    figures.add(T0, 10_000, 2, "b")  # a long call that started first, stored last
    figures.settle()
    assert figures.max_in_flight == 2 and figures.busy_ns == 10_000
    figures.add(T0 + 10 * LATENESS_NS, 100, 1, "a")  # far later: the old intervals are let go
    figures.settle()
    assert figures.busy_ns == 10_100 and figures.retained == 1
    assert Concurrency.from_dict(figures.to_dict()) == figures.copy()


@settings(max_examples=200, deadline=None)
@given(
    calls=st.lists(st.tuples(st.integers(0, 3_000), st.integers(0, 1_000)), min_size=1, max_size=60),
    sequential=st.booleans(),
    cuts=st.lists(st.integers(1, 59), max_size=4),
)
def test_overlap_figures_are_those_of_every_interval_at_once(calls, sequential, cuts):
    """busy_ns and max_in_flight, folded in batches (one after another or not), are the union's
    length and the deepest overlap of all the intervals, counted instant by instant."""
    if sequential:  # each call starts where or after the previous one ended
        begin, laid = 0, []
        for gap, duration in calls:
            laid.append((begin + gap % 7, duration))
            begin += gap % 7 + duration
        calls = laid
    figures = Concurrency("f")
    bounds = sorted({0, len(calls), *(cut for cut in cuts if cut < len(calls))})
    for low, high in itertools.pairwise(bounds):
        for start, duration in calls[low:high]:
            figures.add(T0 + start, duration, 1, "a")
        figures.settle()
    depth = [0] * (max(start + duration for start, duration in calls) + 1)
    for start, duration in calls:
        for instant in range(start, start + duration):
            depth[instant] += 1
    assert figures.busy_ns == sum(1 for d in depth if d)
    assert figures.max_in_flight == max(depth) or (max(depth) == 0 and figures.max_in_flight <= 1)


def test_serialized_hint_only_where_threads_took_turns_on_a_busy_function():
    serial = figures_of([(n * 1_000, 950) for n in range(32)])
    hint = serialized_hint(serial, first_seq=7)
    assert hint is not None and hint.kind == "serialized" and hint.seq == 7
    assert "2 threads" in hint.message and "releases the GIL" in hint.message and "TensorFlow ops" in hint.message
    assert serialized_hint(figures_of([(n // 2 * 1_000, 1_000) for n in range(32)])) is None  # overlapped
    assert serialized_hint(figures_of([(n * 1_000, 950) for n in range(32)], threads=(1,))) is None
    assert serialized_hint(figures_of([(n * 10_000, 950) for n in range(32)])) is None  # mostly idle
    assert serialized_hint(figures_of([(n * 1_000, 950) for n in range(8)])) is None  # too few calls


class Build(NamedTuple):
    func_name: str
    call_site: str | None
    ops: int
    functions: tuple[str, ...]


def test_retraced_hint_names_the_tf_function_and_the_fixes():
    assert retraced_hint(Build("scale", "train.py:9", RETRACED_OPS - 1, ("step",)), 12) is None
    hint = retraced_hint(Build("scale", "train.py:9", 25, ("step",)), 40, seq=3)
    assert hint.kind == "retraced" and hint.seq == 3
    for text in ("25 ops", "(step)", "40 functions", "input_signature", "tf.constant(x)", "reduce_retracing=True"):
        assert text in hint.message


def test_trace_hints_include_the_derived_ones_and_a_loaded_recorder_keeps_them():
    calls = [graph_call([(4, 3)], seq=n + 1, start=T0 + n * 1_000, duration=990, thread=1 + n % 2) for n in range(20)]
    trace = fabricate.trace_of(calls)
    kinds = sorted(h.kind for h in trace.hints)
    assert kinds == ["serialized", "unknown-shape"]
    diagnosis = trace.diagnosis()
    assert diagnosis.signatures() == ["load(float32[]) -> uint8[4,3]  (20 calls)"]
    assert diagnosis.time_share(diagnosis.pipeline[0]) > 0.9
    loaded = npi.Recorder()
    loaded.load_records(trace.invocations, [], dict(trace.stats()), 20, 0)
    loaded.load_diagnosis(diagnosis.shapes, diagnosis.pipeline, [Build("load", None, 12, ())], 30)
    assert sorted(h.kind for h in npi.Trace(loaded).hints) == ["retraced", "serialized", "unknown-shape"]


def entries_of(invocations):
    return list(state.entries_from_rows([inv.row() for inv in invocations]))


def test_timeline_lanes_bars_and_window():
    calls = [graph_call([(2,)], seq=n + 1, start=T0 + n * 1_000, duration=500, thread=1 + n % 3) for n in range(30)]
    calls[4] = calls[4].replace(violations=[fabricate.violation(calls[4])])
    entries = entries_of(calls)
    timeline = state.timeline(entries, state.timeline_origin(entries))
    assert [lane["thread"] for lane in timeline["lanes"]] == ["Dummy-1", "Dummy-2", "Dummy-3"]
    assert len(timeline["bars"]) == 30 and not timeline["merged"] and timeline["functions"] == ["load"]
    flagged = [bar for bar in timeline["bars"] if bar[state.BAR_FLAGS] & state.BAR_VIOLATION]
    assert [bar[state.BAR_SEQ] for bar in flagged] == [5]
    assert (timeline["start"], timeline["end"]) == (0, 29 * 1_000 + 500)
    window = state.timeline(entries, state.timeline_origin(entries), [10_000, 12_000])
    assert sorted(bar[state.BAR_SEQ] for bar in window["bars"]) == [11, 12, 13] and window["window"] == [10_000, 12_000]


def test_timeline_merges_calls_closer_than_a_pixel_beyond_its_bar_budget():
    calls = [graph_call([(2,)], seq=n + 1, start=T0 + n * 100, duration=90) for n in range(500)]
    calls[250] = calls[250].replace(violations=[fabricate.violation(calls[250])])
    entries = entries_of(calls)
    timeline = state.timeline(entries, state.timeline_origin(entries), max_bars=100)
    assert timeline["merged"] and len(timeline["bars"]) <= 100
    assert sum(bar[state.BAR_CALLS] for bar in timeline["bars"]) == 500
    assert sum(1 for bar in timeline["bars"] if bar[state.BAR_FLAGS] & state.BAR_VIOLATION) == 1


def reference_timeline_bars(entries, origin, window, max_bars):
    """The timeline's bars one call at a time (what the column-wise version must give)."""
    lanes, functions, calls = {}, {}, []
    for seq, duration, row in entries:
        start = row[C_START_NS] - origin
        end = start + duration
        if window and (end < window[0] or start > window[1]):
            continue
        lane = lanes.setdefault((row[C_PROCESS], row[C_THREAD_ID]), len(lanes))
        function = functions.setdefault(row[C_SITE][S_FUNC_NAME], len(functions))
        flags = (state.BAR_VIOLATION if row[C_VIOLATIONS] else 0) | (state.BAR_ERROR if row[C_ERROR] else 0)
        calls.append([lane, start, end, seq, flags, 1, function])
    calls.sort(key=lambda call: (call[0], call[1]))
    drawn = {"functions": list(functions), "lanes": len(lanes), "merged": len(calls) > max_bars}
    if len(calls) <= max_bars:
        return calls, drawn
    starts = [call[1] for call in calls]
    ends = [call[2] for call in calls]
    low = window[0] if window else min(starts)
    high = window[1] if window else max(ends)
    gap = max(1.0, float(high) - float(low)) / state.TIMELINE_PIXELS
    for _ in range(40):
        bars = []
        for call in calls:
            last = bars[-1] if bars else None
            if last is not None and last[0] == call[0] and call[1] - last[2] < gap:
                last[2] = max(last[2], call[2])
                last[4] |= call[4]
                last[5] += 1
                last[6] = last[6] if last[6] == call[6] else -1
            else:
                bars.append(list(call))
        if len(bars) <= max_bars:
            break
        gap *= 2
    return bars[-max_bars:], drawn


@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 50_000), st.integers(0, 5_000), st.sampled_from("abc"),
                  st.booleans(), st.booleans()),
        min_size=1, max_size=120,
    ),
    window=st.one_of(st.just(()), st.tuples(st.integers(0, 30_000), st.integers(0, 30_000)).map(sorted)),
    max_bars=st.integers(1, 40),
)
def test_timeline_bars_are_those_of_merging_one_call_at_a_time(calls, window, max_bars):
    invocations = []
    for seq, (lane, start, duration, func, violated, failed) in enumerate(calls, 1):
        inv = graph_call([(2,)], func=func, seq=seq, start=T0 + start, duration=duration, thread=lane % 2,
                         error=ValueError("no") if failed else None)
        inv = inv.replace(process=ProcessInfo("h", 1 + lane // 2))
        invocations.append(inv.replace(violations=[fabricate.violation(inv)]) if violated else inv)
    entries = entries_of(invocations)
    origin = state.timeline_origin(entries)
    drawn = state.timeline(entries, origin, window, max_bars=max_bars)
    bars, expected = reference_timeline_bars(entries, origin, window, max_bars)
    assert drawn["bars"] == bars
    assert (drawn["functions"], len(drawn["lanes"]), drawn["merged"]) == (
        expected["functions"], expected["lanes"], expected["merged"])


def test_timeline_of_a_file_whose_times_leave_int64():
    """Times a hostile file puts 2**63 apart still draw (as float64), without wrapping around."""
    calls = [graph_call([(2,)], seq=1, start=-(1 << 63), duration=(1 << 63) - 1),
             graph_call([(2,)], seq=2, start=(1 << 63) - 1, duration=(1 << 63) - 1)]
    entries = entries_of(calls)
    drawn = state.timeline(entries, state.timeline_origin(entries), max_bars=1)
    assert drawn["start"] == 0 and drawn["end"] >= 2.0 ** 64 and len(drawn["bars"]) == 1
    assert drawn["bars"][0][state.BAR_CALLS] == 2 and drawn["merged"]


def test_panel_summary_carries_signatures_overlaps_and_hint_kinds():
    calls = [graph_call([(4, 3)], seq=n + 1, start=T0 + n * 1_000, duration=990, thread=1 + n % 2) for n in range(20)]
    trace = fabricate.trace_of(calls)
    diagnosis = trace.diagnosis()
    line = state.summary(trace.stats()["load"], diagnosis)
    assert line["signatures"] == ["load(float32[]) -> uint8[4,3]  (20 calls)"]
    assert line["pipeline"]["threads"] == 2 and line["pipeline"]["max_in_flight"] == 1
    assert line["hints"] == ["serialized", "unknown-shape"]
    found = state.findings(diagnosis)
    assert sorted(h["kind"] for h in found["hints"]) == ["serialized", "unknown-shape"]
    assert "set_shape" not in state.summary(trace.stats()["load"])  # without a diagnosis: as before


def test_calls_shaped_like_earlier_ones_are_counted_exactly():
    """The recorder's fast path counts repeated shapes without merging them again: the counts,
    the dtypes and the call that settled the suggestion come out as one call at a time gives."""
    calls = [graph_call([(4, 3)], seq=n + 1, start=T0 + n * 1_000) for n in range(100)]
    calls.append(graph_call([(4, 3)], seq=101, start=T0 + 101_000).replace(
        raw_outputs=[fabricate.raw_array(np.zeros((4, 3), np.float64), capture="none")],
    ))  # same shape, another dtype
    calls.append(graph_call([(5, 3)], seq=102, start=T0 + 102_000))
    calls.append(graph_call([], seq=103, start=T0 + 103_000, error=npi.ErrorInfo("ValueError", "bad")))
    fast = fabricate.trace_of(calls, capacity=10).diagnosis().shapes
    slow = SiteShapes("load", "model.py:12", "graph", "wrapper", None)
    for call in calls:
        slow.add(call.seq, call.raw_inputs, call.raw_outputs, call.error is not None)
    assert fast == [slow]
    (site,) = fast
    assert site.calls == 103 and site.errors == 1 and site.settled_seq == 102
    assert site.outputs[0].distinct == {(4, 3): 101, (5, 3): 1} and site.outputs[0].dtypes == ["uint8", "float64"]
    assert site.inputs[0].seen == 103 and signature(site) == "load(float32[]) -> uint8|float64[None,3]  (103 calls, 1 raised)"


def test_calls_that_overlap_on_paper_but_take_turns_are_serialized_by_their_work():
    """Two threads whose 2 us calls each did 1 us of work: preempted, they overlap a little (in
    flight 1.32) while the work progressed 0.66 calls at a time."""
    preempted = figures_of([(n * 1_500, 2_000) for n in range(32)])
    assert round(preempted.mean_in_flight, 2) == 1.32
    assert serialized_hint(preempted) is None  # without durations, the overlap is all there is
    hint = serialized_hint(preempted, typical_ns=1_000)
    assert hint is not None and "progressed 0.66 calls at a time" in hint.message
    assert serialized_hint(preempted, typical_ns=2_000) is None  # each call did its own 2 us: in parallel
    starved = figures_of([(n // 2 * 2_000, 2_000) for n in range(32)])  # GIL released, no free core
    assert starved.mean_in_flight == 2.0 and serialized_hint(starved, typical_ns=1_000) is None


# -- trace files --------------------------------------------------------------------------------------


def exported(tmp_path, calls, name="t.npftrace", **options):
    trace = fabricate.trace_of(calls, **options)
    path = tmp_path / name
    trace.export(path)
    return trace, path


def serial_calls(count=100, static=((None, 3),), start=T0, process=None):
    calls = [
        graph_call([(4, 3)], seq=n + 1, start=start + n * 1_000, duration=990, thread=1 + n % 2, static=static)
        for n in range(count)
    ]
    return [c.replace(process=process) for c in calls] if process is not None else calls


def test_shapes_overlaps_static_shapes_and_hints_round_trip_through_a_trace_file(tmp_path):
    trace, path = exported(tmp_path, serial_calls(), capacity=10)
    loaded = npi.load(path)
    original, reread = trace.diagnosis(), loaded.diagnosis()
    assert reread.shapes == original.shapes and reread.shapes[0].calls == 100  # evicted calls counted
    assert reread.pipeline == original.pipeline and reread.pipeline[0].calls == 100
    assert reread.registry_size == original.registry_size
    assert loaded.hints == trace.hints and sorted(h.kind for h in loaded.hints) == ["serialized", "unknown-shape"]
    assert loaded.invocations[0].site.static_shapes == ((None, 3),)
    assert reread.signatures() == ["load(float32[]) -> uint8[4,3]  (100 calls)"]


def test_a_version_1_file_loads_and_its_kept_calls_give_the_shapes(tmp_path):
    import json
    import zipfile

    _, path = exported(tmp_path, serial_calls(), capacity=10)
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(contents["trace.json"])
    document["version"] = 1
    for key in ("shapes", "pipeline", "builds", "registry_size"):
        del document[key]
    for site in document["sites"]:
        del site["static_shapes"]
    contents["trace.json"] = json.dumps(document).encode()
    old = tmp_path / "v1.npftrace"
    with zipfile.ZipFile(old, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    loaded = npi.load(old)
    (site,) = loaded.diagnosis().shapes
    assert site.calls == 10 and site.static_shapes is None  # what the 10 kept calls say
    assert loaded.diagnosis().builds == [] and loaded.diagnosis().registry_size is None
    assert [h.kind for h in loaded.hints] == ["unknown-shape"]  # too few calls kept for the overlaps


def test_merged_files_add_up_their_shapes_and_overlaps(tmp_path):
    first = serial_calls(40, process=ProcessInfo("a", 1))
    second = serial_calls(60, start=T0 + 10**9, process=ProcessInfo("b", 2))
    _, one = exported(tmp_path, first, "one.npftrace", capacity=10)
    _, two = exported(tmp_path, second, "two.npftrace", capacity=10)
    merged = npi.load([one, two]).diagnosis()
    (site,) = merged.shapes
    assert site.calls == 100 and site.outputs[0].distinct == {(4, 3): 100}
    (figures,) = merged.pipeline
    assert figures.calls == 100 and figures.busy_ns == 100 * 990
