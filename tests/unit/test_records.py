"""Records built through Invocation.create: layout, lazy views, equality, derived hints."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.model import records
from tfnp_inspect.model.records import CallRow, ProcessInfo, RawArray

import fabricate


def test_named_positions_follow_the_declarations():
    for prefix, declaration in (("A_", RawArray), ("C_", CallRow)):
        for index, name in enumerate(declaration._fields):
            assert getattr(records, prefix + name.upper()) == index
    assert npi.CallSite._fields.index("func_name") == records.S_FUNC_NAME
    assert ProcessInfo._fields.index("task") == records.P_TASK
    assert records.V_KIND == 0 and npi.Violation("k", "f", 1, None, "m").row()[records.V_KIND] == "k"


def test_a_row_is_a_plain_tuple_in_call_row_order_that_the_collector_does_not_track():
    inv = fabricate.invocation([np.arange(3.0)])
    row = inv.row()
    assert type(row) is tuple and len(row) == len(CallRow._fields)
    assert CallRow(*row).seq == inv.seq and CallRow(*row).duration_ns == inv.duration_ns
    assert all(type(raw) is tuple for raw in row[records.C_RAW_INPUTS] + row[records.C_RAW_OUTPUTS])
    kept = [row]
    for _ in range(4):  # each collection untracks one level of nested tuples
        gc.collect()
    assert not gc.is_tracked(kept[0])


def test_fields_read_back_through_the_view():
    process = ProcessInfo("host-a", 42, "worker-1")
    inv = fabricate.invocation(
        [np.arange(4, dtype=np.float32)], func="scale", mode="graph", stateful=False,
        op_name="scale_op", seq=7, duration_ns=2_000, process=process, thread="loader",
    )
    assert (inv.seq, inv.func_name, inv.mode, inv.stateful, inv.op_name) == (7, "scale", "graph", False, "scale_op")
    assert (inv.thread_name, inv.duration_ns, inv.call_site) == ("loader", 2_000, "model.py:12")
    assert (inv.host, inv.pid, inv.task) == ("host-a", 42, "worker-1")
    assert inv.process == process and inv.process.label == "worker-1 (host-a:42)"
    assert ProcessInfo("h", 1).label == "h:1"
    assert inv.bytes_in == 16 and inv.bytes_out == 16
    assert inv.site.func_name == "scale" and inv.raw_inputs[0].shape == (4,)
    assert repr(inv) == "<Invocation #7 scale graph 2.0us (float32[4]) -> (float32[4])>"


def test_equality_is_the_call_and_never_compares_arrays():
    data = [np.arange(5.0)]
    first = fabricate.invocation(data, capture="full", seq=3)
    same_call = first.replace(raw_outputs=[fabricate.raw_array(np.ones(5), "full")])
    other_call = fabricate.invocation(data, capture="full", seq=4)
    elsewhere = first.replace(process=ProcessInfo("other-host", 1))
    assert first == same_call and hash(first) == hash(same_call)
    assert first != other_call and first != elsewhere
    assert {first, same_call, other_call} == {first, other_call}
    assert first in [other_call, same_call] and first not in [other_call]
    assert first != first.row()  # a view equals views, not bare tuples


def test_replace_derives_the_byte_counts_again():
    inv = fabricate.invocation([np.arange(4.0)])
    bigger = inv.replace(raw_inputs=[fabricate.raw_array(np.arange(10.0))], duration_ns=9)
    assert (bigger.bytes_in, bigger.duration_ns, bigger.seq) == (80, 9, inv.seq)
    assert inv.bytes_in == 32


def test_capture_levels_decide_stats_payloads_and_replayability():
    values = np.array([1.0, 2.0, np.nan, 4.0])
    none, summary, full = (fabricate.invocation([values], capture=c) for c in ("none", "summary", "full"))
    assert none.inputs[0].stats is None and none.inputs[0].fingerprint is not None
    stats = summary.inputs[0].stats
    assert (stats.min, stats.max, stats.nan_count, stats.exact) == (1.0, 4.0, 1, True)
    assert summary.inputs[0].data is None and not summary.captured and summary.captured_bytes == 0
    assert full.captured and full.captured_bytes == 64
    np.testing.assert_array_equal(full.inputs[0].data, values)


def test_stats_of_arrays_without_finite_values_and_of_strings():
    (info,) = fabricate.invocation([np.array([np.inf, np.nan])]).inputs
    assert info.stats.nonfinite and math.isnan(info.stats.mean) and info.stats.elements == 2
    (text,) = fabricate.invocation([np.array([b"a", b"bc"], dtype=object)], outputs=[]).inputs
    assert text.stats is None and text.dtype == "object"


def test_nonfinite_hint_only_when_the_inputs_were_finite():
    finite_in = fabricate.invocation([np.ones(2)], outputs=[np.array([np.nan, 1.0])])
    assert [h.kind for h in finite_in.hints] == ["nonfinite"]
    assert "output 0 of double" in finite_in.hints[0].message
    nan_in = fabricate.invocation([np.array([np.nan])], outputs=[np.array([np.nan])])
    assert nan_in.hints == ()


def test_flags_become_array_info_fields():
    raw = fabricate.raw_array(np.arange(6.0).reshape(2, 3).T, shares_tensor=True, will_be_copied=True)
    info = records.array_info(raw)
    assert info.shares_tensor_memory and info.will_be_copied and not info.c_contiguous
    assert info.shape == (3, 2) and info.size == 6 and info.dtype == "float64"


def test_violations_and_hints_round_trip_through_rows():
    inv = fabricate.invocation()
    found = fabricate.violation(inv)
    hint = npi.Hint("could-be-stateless", inv.func_name, inv.seq, "declare stateful=False")
    flagged = inv.replace(violations=[found], static_hints=[hint])
    assert flagged.violations == (found,) and flagged.static_hints == (hint,)
    assert "violations=[mutated-input]" in repr(flagged)


@pytest.mark.parametrize("label", [3, b"bytes"])
def test_task_labels_must_be_text(label):
    with pytest.raises(TypeError, match="task label"):
        npi.set_task_label(label)


def test_type_label():
    assert records.type_label(np.dtype("float32"), (2, 3)) == "float32[2, 3]"
    assert records.type_label("int64", ()) == "int64[]"
