"""``load()`` on hostile and unusual trace files, each built here with zipfile and json.

Every failure must be a TraceFileError naming the file; memory must stay bounded (measured with
tracemalloc, which sees numpy's buffers and msgspec's objects too); and any file that loads must
be safe to show, export again and put in the panel's state.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tfnp_inspect as npi
from tfnp_inspect.io import TraceFileError, chrome_trace, export_trace, trace_file, trace_reader, trace_schema
from tfnp_inspect.views.panel import state

import fabricate

pytestmark = pytest.mark.timeout(120)

MIB = 1 << 20


# -- building files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A small valid trace: summary and full capture, strings, an error, a violation."""
    calls = [
        fabricate.invocation([np.arange(6, dtype=np.float32).reshape(2, 3)], capture="full"),
        fabricate.invocation([np.array([b"a", b"bc"], dtype=object)], outputs=[np.array([1, 2])],
                             func="lengths", capture="full"),
        fabricate.invocation([np.arange(4.0)], func="summarized"),
        fabricate.invocation([np.array(2.5)], func="explode",
                             error=npi.ErrorInfo("ValueError", "bad", "Traceback ...")),
    ]
    calls.append(calls[0].replace(seq=calls[0].seq + 10, violations=[fabricate.violation(calls[0])]))
    path = tmp_path_factory.mktemp("hostile") / "base.npftrace"
    export_trace(fabricate.trace_of(calls, capture="full"), path)
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return path


def document_of(path: Path) -> dict:
    return json.loads(members(path)["trace.json"])


def with_document(base: Path, target: Path, change) -> Path:
    contents = members(base)
    document = json.loads(contents["trace.json"])
    change(document)
    contents["trace.json"] = json.dumps(document).encode()
    return write_members(target, contents)


def with_json_text(base: Path, target: Path, text: bytes) -> Path:
    contents = members(base)
    contents["trace.json"] = text
    return write_members(target, contents)


def assert_refused(path: Path | str, *fragments: str, **load_options) -> str:
    with pytest.raises(TraceFileError) as caught:
        npi.load(path, **load_options)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def first_captured(document: dict, encoding: str = "npy") -> dict:
    for inv in document["invocations"]:
        for array in inv["inputs"] + inv["outputs"]:
            if array["data"] is not None and array["data"]["encoding"] == encoding:
                return array
    raise AssertionError(f"no captured {encoding} array")


def peak_while(action) -> int:
    """Peak traced memory (bytes) while ``action`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def refused_within(path: Path, **load_options) -> tuple[str, int]:
    """The message and the peak memory of a refused load."""
    messages = []

    def attempt():
        with pytest.raises(TraceFileError) as caught:
            npi.load(path, **load_options)
        messages.append(str(caught.value))

    peak = peak_while(attempt)
    assert str(path) in messages[0]
    return messages[0], peak


def patch_member_header(path: Path, member: str, *, method: int | None = None, flags: int | None = None) -> None:
    """Rewrite a member's compression method or flag bits in its local and directory headers."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo(member).header_offset
    directory = position = 0
    while True:  # find the member's central directory entry
        position = data.find(b"PK\x01\x02", position)
        assert position >= 0
        length = int.from_bytes(data[position + 28:position + 30], "little")
        if data[position + 46:position + 46 + length] == name:
            directory = position
            break
        position += 4
    if method is not None:
        data[local + 8:local + 10] = method.to_bytes(2, "little")
        data[directory + 10:directory + 12] = method.to_bytes(2, "little")
    if flags is not None:
        data[local + 6:local + 8] = flags.to_bytes(2, "little")
        data[directory + 8:directory + 10] = flags.to_bytes(2, "little")
    path.write_bytes(bytes(data))


# -- the zip bomb ---------------------------------------------------------------------------

BOMB_ELEMENTS = 64 * MIB  # float64 zeros: 512 MiB deflated into about 511 KiB


def write_bomb(base: Path, path: Path, references: int = 8) -> Path:
    """One deflated 512 MiB array that ``references`` calls refer to."""
    document = document_of(base)
    template = first_captured(document)
    call = document["invocations"][0]
    call["inputs"] = [dict(template, shape=[BOMB_ELEMENTS], dtype="float64", nbytes=8 * BOMB_ELEMENTS,
                           data={"member": "arrays/bomb.npy", "encoding": "npy"}, sample=None)]
    call["outputs"] = []
    calls = []
    for n in range(references):
        calls.append(dict(call, seq=n + 1, violations=[], hints=[]))
    document.update(invocations=calls, total=references, dropped=0, violations=[])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("trace.json", json.dumps(document))
        archive.writestr("samples.npy", members(base)["samples.npy"])
        with archive.open("arrays/bomb.npy", "w", force_zip64=True) as stream:
            header = {"descr": "<f8", "fortran_order": False, "shape": (BOMB_ELEMENTS,)}
            np.lib.format.write_array_header_1_0(stream, header)
            zeros = bytes(8 * MIB)
            for _ in range(BOMB_ELEMENTS * 8 // len(zeros)):
                stream.write(zeros)
    return path


@pytest.fixture(scope="module")
def bomb(base, tmp_path_factory) -> Path:
    return write_bomb(base, tmp_path_factory.mktemp("bomb") / "bomb.npftrace")


def test_zip_bomb_is_refused_by_its_declared_size_before_it_is_inflated(bomb):
    assert bomb.stat().st_size < 600 * 1024
    started = time.perf_counter()
    message, peak = refused_within(bomb, max_bytes=64 * MIB)
    assert "arrays/bomb.npy needs 536,871,040 bytes" in message  # 128 of them the .npy header
    assert "max_bytes=67,108,864" in message and "tfnp_inspect.load(path, max_bytes=...)" in message
    assert peak < 8 * MIB
    assert time.perf_counter() - started < 5  # refused, not inflated


def test_zip_bomb_referenced_eight_times_is_inflated_once(bomb):
    loaded = []
    peak = peak_while(lambda: loaded.append(npi.load(bomb)))
    arrays = [inv.raw_inputs[0].data for inv in loaded[0].invocations]
    assert len(arrays) == 8 and all(a is arrays[0] for a in arrays)
    assert arrays[0].shape == (BOMB_ELEMENTS,) and not arrays[0].flags.writeable
    assert peak < 512 * MIB + 24 * MIB  # one copy of the array (8 copies took 5.2 GB before)


# -- JSON that would take many times its size ------------------------------------------------


@pytest.mark.parametrize("where", ["invocations", "stats", "flood", "top"])
def test_a_flood_of_empty_objects_is_parsed_in_bounded_memory(base, tmp_path, where):
    flood = b"[" + b",".join([b"{}"] * (2 * MIB)) + b"]"  # 6 MiB: 2 million dicts took 25x
    if where == "top":
        text = flood
    else:  # in place of a list of records, or under a key the reader does not know
        document = document_of(base)
        document[where] = "FLOOD"
        text = json.dumps(document).encode().replace(b'"FLOOD"', flood)
    path = with_json_text(base, tmp_path / "flood.npftrace", text)
    outcome = []

    def attempt():
        try:
            outcome.append(npi.load(path).total)
        except TraceFileError as exc:
            outcome.append(str(exc))

    peak = peak_while(attempt)
    assert peak < 2.5 * len(text), f"{peak / len(text):.1f}x the JSON's size"
    if where == "flood":
        assert outcome == [5]  # unknown keys are skipped, not built
    else:
        assert str(path) in outcome[0]


# -- numbers --------------------------------------------------------------------------------

HUGE = 10**400


def stats0(d):
    return d["stats"][0]


def call0(d):
    return d["invocations"][0]


def input0(d):
    return d["invocations"][0]["inputs"][0]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda d: stats0(d)["histogram"].update({"20000000000": 1}),
         ["trace.stats[0].histogram has a key that is not a non-negative integer up to 487"]),
        (lambda d: stats0(d)["histogram"].update({"-1": 1}), ["trace.stats[0].histogram has a key"]),
        (lambda d: stats0(d)["histogram"].update({"x": 1}), ["trace.stats[0].histogram has a key"]),
        (lambda d: stats0(d).update(total_ns=HUGE), ["trace.stats[0].total_ns must be a non-negative integer up to"]),
        (lambda d: stats0(d).update(max_ns=2**63), ["trace.stats[0].max_ns"]),
        (lambda d: stats0(d).update(bytes_in=HUGE), ["trace.stats[0].bytes_in"]),
        (lambda d: call0(d).update(duration_ns=HUGE), ["trace.invocations[0].duration_ns must be"]),
        (lambda d: call0(d).update(duration_ns=-1), ["trace.invocations[0].duration_ns must be a non-negative"]),
        (lambda d: call0(d).update(start_ns=HUGE), ["trace.invocations[0].start_ns must be an integer from"]),
        (lambda d: call0(d).update(seq=-(2**63) - 1), ["trace.invocations[0].seq"]),
        (lambda d: call0(d).update(thread_id=2**64), ["trace.invocations[0].thread_id must be an integer up to"]),
        (lambda d: call0(d)["process"].update(pid=-1), ["trace.invocations[0].process.pid"]),
        (lambda d: input0(d).update(nbytes=HUGE), ["trace.invocations[0].inputs[0].nbytes"]),
        (lambda d: input0(d).update(fingerprint=2**64), ["trace.invocations[0].inputs[0].fingerprint must be"]),
        (lambda d: input0(d).update(shape=[2**63]), ["trace.invocations[0].inputs[0].shape[0]"]),
        (lambda d: input0(d).update(shape=[1] * 65), ["trace.invocations[0].inputs[0].shape must be a list of at most 64"]),
        (lambda d: input0(d).update(aliases_input=2**31), ["trace.invocations[0].inputs[0].aliases_input"]),
        (lambda d: input0(d).update(sample=[0, HUGE]), ["trace.invocations[0].inputs[0].sample[1]"]),
        (lambda d: d["options"].update(capacity=10**20), ["trace.options.capacity must be a positive integer up to 1099511627776"]),
        (lambda d: d["options"].update(capacity=0), ["trace.options.capacity"]),
        (lambda d: d.update(total=HUGE), ["trace.total"]),
        (lambda d: d.update(dropped=-5), ["trace.dropped must be a non-negative integer"]),
        (lambda d: d.update(total=d["total"] + 1),
         ["trace.total is", "plus the 5 invocations kept", "inconsistent"]),
        (lambda d: stats0(d).update(min_ns=-1), ["trace.stats[0].min_ns must be a non-negative integer"]),
        (lambda d: stats0(d).update(durations_ns=[1] * 129), ["trace.stats[0].durations_ns must be a list of at most 128"]),
        (lambda d: stats0(d).update(durations_ns=[HUGE]), ["trace.stats[0].durations_ns[0]"]),
        (lambda d: stats0(d).update(calls=1.5), ["trace.stats[0].calls must be a non-negative integer, not a number"]),
        (lambda d: call0(d).update(duration_ns=1e300), ["trace.invocations[0].duration_ns must be a non-negative integer, not a number"]),
    ],
)
def test_absurd_numbers_are_refused_by_name(base, tmp_path, change, fragments):
    assert_refused(with_document(base, tmp_path / "numbers.npftrace", change), *fragments)


def extreme(d):
    """Every number at the edge of its range: such a file loads, and must then work everywhere."""
    top = 2**63 - 1
    d["options"].update(capacity=trace_schema.MAX_CAPACITY, max_capture_bytes=top)
    for entry in d["stats"]:
        entry.update(calls=top, errors=top, total_ns=top, max_ns=top, bytes_in=top, bytes_out=top,
                     violations={"mutated-input": top},
                     histogram={"0": top, str(trace_schema.MAX_BUCKET): top},
                     min_ns=0, durations_ns=[top, 0])
    for index, inv in enumerate(d["invocations"]):
        inv.update(seq=top - index, thread_id=2**64 - 1, start_ns=top if index % 2 else -(2**63),
                   duration_ns=top)
        inv["process"]["pid"] = 2**32 - 1
        for array in inv["inputs"] + inv["outputs"]:
            array.update(nbytes=top, fingerprint=2**64 - 1)
            if array["data"] is None:
                array["shape"] = [top]
        for record in inv["violations"] + inv["hints"]:
            record["seq"] = -(2**63)


def test_extreme_but_valid_numbers_can_be_shown_exported_and_paneled(base, tmp_path):
    path = with_document(base, tmp_path / "extreme.npftrace", extreme)
    trace = npi.load(path)
    assert trace.capacity == trace_schema.MAX_CAPACITY
    assert str(trace) and trace._repr_html_()
    for inv in trace.invocations:
        assert repr(inv) and inv._repr_html_()
    for stats in trace.stats().values():
        assert stats._repr_html_()
    again = tmp_path / "again.npftrace"
    trace.export(again)
    assert npi.load(again).total == trace.total
    json.dumps(chrome_trace(trace), allow_nan=False)

    entries = list(state.entries_from_rows([inv.row() for inv in trace.invocations]))
    page = state.page_of(entries, state.Query())
    panel = {
        "timeline": state.timeline(entries, state.timeline_origin(entries), max_bars=2),
        "rows": page.rows,
        "summary": [state.summary(s) for s in trace.stats().values()],
        "details": [state.invocation_detail(inv) for inv in trace.invocations],
        "processes": state.process_choices(entries),
    }
    json.dumps(panel, allow_nan=False)  # what the widget sends to the browser
    assert len(page.rows) == len(trace.invocations)


# -- other hostile contents ------------------------------------------------------------------


def test_declared_128_gib_array_is_refused_unallocated(base, tmp_path):
    contents = members(base)
    member = first_captured(json.loads(contents["trace.json"]))["data"]["member"]
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (16 << 30,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(bytes(64))
    contents[member] = buffer.getvalue()
    path = write_members(tmp_path / "huge.npftrace", contents)
    message, peak = refused_within(path)
    assert "declares 137438953472 bytes" in message and member in message
    assert peak < 4 * MIB


def test_invalid_utf8_in_trace_json(base, tmp_path):
    text = members(base)["trace.json"].replace(b'"MainThread"', b'"Main\xffThread"', 1)
    assert_refused(with_json_text(base, tmp_path / "utf8.npftrace", text), "trace.json is not valid UTF-8")


def test_invalid_utf8_in_a_string_item(base, tmp_path):
    contents = members(base)
    member = first_captured(json.loads(contents["trace.json"]), "items")["data"]["member"]
    payload = b"\xff\xfe"
    items = bytes([1]) + len(payload).to_bytes(8, "little") + payload  # kind 1: str as UTF-8
    items += bytes([0]) + (1).to_bytes(8, "little") + b"x"
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(items, dtype=np.uint8))
    contents[member] = buffer.getvalue()
    path = write_members(tmp_path / "items.npftrace", contents)
    assert_refused(path, "item 0 is a str that is not valid UTF-8")


def test_unsupported_compression_method(base, tmp_path):
    path = tmp_path / "method.npftrace"
    path.write_bytes(base.read_bytes())
    patch_member_header(path, "samples.npy", method=99)
    assert_refused(path, "'samples.npy' uses compression method 99")


def test_encrypted_member(base, tmp_path):
    path = tmp_path / "encrypted.npftrace"
    path.write_bytes(base.read_bytes())
    patch_member_header(path, "trace.json", flags=0x1)
    assert_refused(path, "'trace.json' is encrypted")


def test_duplicate_members(base, tmp_path):
    path = tmp_path / "twice.npftrace"
    contents = members(base)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
        archive.writestr("trace.json", contents["trace.json"])
    assert_refused(path, "two members named 'trace.json'")


def test_many_members_are_charged_before_the_directory_is_read(base, tmp_path):
    contents = members(base)
    contents.update({f"junk/{n}": b"" for n in range(3000)})
    path = write_members(tmp_path / "many.npftrace", contents)
    assert_refused(path, "zip directory", "max_bytes=1,048,576", max_bytes=MIB)
    assert npi.load(path).total == 5  # within the default limit: the extra members are ignored


def test_lying_npy_header_and_truncated_member(base, tmp_path):
    contents = members(base)
    member = first_captured(json.loads(contents["trace.json"]))["data"]["member"]
    contents[member] = contents[member][:-4]
    assert_refused(write_members(tmp_path / "short.npftrace", contents), member, "declares")


# -- what the path names ----------------------------------------------------------------------


def test_a_directory_is_refused(tmp_path):
    assert_refused(tmp_path, "it is a directory; only regular files are read")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.npftrace"
    os.mkfifo(fifo)
    outcome = []

    def attempt():
        try:
            npi.load(fifo)
        except Exception as exc:  # noqa: BLE001 - what it raises is checked below
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock it before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("load() blocked on a FIFO")
    assert isinstance(outcome[0], TraceFileError) and "FIFO" in str(outcome[0])
    assert str(fifo) in str(outcome[0])


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_refused_unread():
    message, peak = refused_within(Path("/dev/zero"))
    assert "character device" in message and peak < MIB


def test_a_symlink_loop_and_a_missing_file(tmp_path):
    first, second = tmp_path / "a.npftrace", tmp_path / "b.npftrace"
    try:
        first.symlink_to(second)
        second.symlink_to(first)
    except OSError:
        pytest.skip("no symlinks here")
    assert_refused(first, "cannot read it")
    assert_refused(tmp_path / "missing.npftrace", "cannot read it")


def test_a_symlink_to_a_good_file_loads(base, tmp_path):
    link = tmp_path / "link.npftrace"
    link.symlink_to(base)
    assert npi.load(link).total == 5


def test_bytes_paths_name_their_type(base):
    with pytest.raises(TypeError, match=r"not bytes.*os\.fsdecode"):
        npi.load(os.fsencode(base))
    with pytest.raises(TypeError, match="max_bytes must be an int or None, not str"):
        npi.load(base, max_bytes="4G")


def test_max_bytes_none_lifts_the_limit_and_zero_reads_nothing(base):
    assert npi.load(base, max_bytes=None).total == 5
    assert_refused(base, "max_bytes=0", max_bytes=0)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        npi.load(base, max_bytes=-1)


def test_every_member_is_read_once_and_a_merge_shares_the_budget(base, tmp_path):
    second = tmp_path / "second.npftrace"
    second.write_bytes(base.read_bytes())
    size = sum(info.file_size + trace_file.MEMBER_COST for info in zipfile.ZipFile(base).infolist())
    items = {(a["data"]["member"], tuple(a["data"]["shape"]))
             for inv in document_of(base)["invocations"] for a in inv["inputs"] + inv["outputs"]
             if a["data"] is not None and a["data"]["encoding"] == "items"}
    size += sum(math.prod(shape) for _, shape in items) * trace_reader.ITEM_OBJECT_COST
    assert npi.load(base, max_bytes=size).total == 5
    assert_refused(second, max_bytes=size - 1)
    with pytest.raises(TraceFileError, match=r"second\.npftrace"):
        npi.load([base, second], max_bytes=size + size // 2)
    assert npi.load([base, second], max_bytes=2 * size).total == 10


def test_file_permissions_error_names_the_file(base, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    locked = tmp_path / "locked.npftrace"
    locked.write_bytes(base.read_bytes())
    locked.chmod(0)
    try:
        assert_refused(locked, "cannot read it")
    finally:
        locked.chmod(stat.S_IRUSR | stat.S_IWUSR)
