"""IPython integration: ``%load_ext tfnp_inspect``, the ``%%npfunc`` cell magic and ``%npfunc``.

The cell magic runs the cell through ``shell.run_cell`` inside :func:`tfnp_inspect.trace`, so the
cell behaves as it would without the magic (last-expression display, ``_``, tracebacks), and
hands the cell's value and exception on to the outer execution result so that front-ends see
the cell fail or succeed exactly as before. Options are parsed with IPython's
``magic_arguments``: ``%%npfunc?`` and ``%npfunc?`` document them.
"""

from __future__ import annotations

import bdb
import fnmatch
import os
import re
import sys
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display
from IPython.utils.process import arg_split  # pyright: ignore[reportPrivateImportUsage] (re-exported)

from ..model.options import CAPTURE_LEVELS, Options
from ..model.records import VIOLATION_KINDS, Invocation
from ..recording.replay import ReplayError, Runner, replay
from ..recording.session import install, is_installed, recorder, trace, uninstall
from ..recording.trace import Trace
from ..views import render

#: ``%npfunc show`` lists this many invocations unless told otherwise.
DEFAULT_SHOW = 20
#: The ``%npfunc`` subcommands, with the (least, most) number of arguments each takes.
_ARGUMENT_COUNTS: dict[str, tuple[int, int]] = {
    "on": (0, 0), "off": (0, 0), "status": (0, 0), "show": (0, 1), "stats": (0, 0), "shapes": (0, 0),
    "violations": (0, 0), "clear": (0, 0), "export": (1, 1), "panel": (0, 0), "replay": (1, 1),
    "debug": (1, 1),
}
#: How each subcommand is written with its arguments (for the usage message of a bare %npfunc).
_SUBCOMMAND_USAGE = {
    "on": "on [options]", "show": "show [N]", "export": "export PATH", "replay": "replay SEQ", "debug": "debug SEQ",
}

_RECORDING_ARGUMENTS = (
    argument("--capacity", type=int, metavar="N", help="invocations kept in the ring buffer (default 10000)."),
    argument(
        "--capture", choices=CAPTURE_LEVELS,
        help="'none': metadata and fingerprints; 'summary' (default): plus array statistics; "
             "'full': plus a copy of every input and output (needed for replay).",
    ),
    argument(
        "--checks", metavar="KINDS",
        help=f"comma-separated checks to run (default all): {', '.join(VIOLATION_KINDS)}.",
    ),
    argument("--no-checks", action="store_true", help="run no contract checks (timings and arrays only)."),
    argument("--strict", action="store_true", help="raise ViolationError from the call that breaks a contract."),
)


def recording_arguments(magic: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by ``%%npfunc`` and ``%npfunc on``."""
    for decorator in reversed(_RECORDING_ARGUMENTS):
        magic = decorator(magic)
    return magic


def recording_options(args: Namespace) -> dict[str, Any]:
    """``trace()``/``install()`` keyword arguments from parsed options (validated)."""
    if args.checks is not None and args.no_checks:
        raise ValueError("give --checks or --no-checks, not both")
    options: dict[str, Any] = {}
    if args.capacity is not None:
        options["capacity"] = args.capacity
    if args.capture is not None:
        options["capture"] = args.capture
    if args.no_checks:
        options["checks"] = "none"
    elif args.checks is not None:
        options["checks"] = args.checks
    if args.strict:
        options["strict"] = True
    Options.from_kwargs(**options)  # names the bad option before anything runs
    return options


def name_filter(pattern: str) -> render.NameFilter:
    """``re:REGEX`` searches function names; anything else is a shell-style wildcard matched
    against the qualified name or its last part (``parse`` matches ``make.<locals>.parse``)."""
    if pattern.startswith("re:"):
        try:
            regex = re.compile(pattern[3:])
        except re.error as error:
            raise ValueError(f"--filter: bad regular expression {pattern[3:]!r}: {error}") from None
        return lambda name: regex.search(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name.rpartition(".")[2], pattern)


def describe_options(options: Options) -> str:
    checks = options.checks
    named = "all" if checks == frozenset(VIOLATION_KINDS) else (",".join(sorted(checks)) or "none")
    strict = ", strict" if options.strict else ""
    return f"capture={options.capture}, capacity={options.capacity}, checks={named}{strict}"


def _bundle(text: str, html: str) -> None:
    """Display plain text for terminals and HTML for notebooks, in one MIME bundle."""
    display({"text/plain": text, "text/html": html}, raw=True)


def _error(message: str) -> None:
    print(f"tfnp_inspect: {message}", file=sys.stderr)


def _debugger_runner(debugger: Any) -> Runner:
    """Like ``Bdb.runcall``, except that quitting the debugger raises ``BdbQuit``: ``runcall``
    would return None, which a replay would compare as if the function had returned it."""

    def run(func: Callable[..., Any], *args: Any) -> Any:
        debugger.reset()
        sys.settrace(debugger.trace_dispatch)
        try:
            return func(*args)
        finally:
            debugger.quitting = True
            sys.settrace(None)

    return run


@magics_class
class NpFuncMagics(Magics):
    """``%%npfunc`` and ``%npfunc``; state (the last cell's trace) lives on the instance."""

    shell: Any  # the InteractiveShell that registered the magics (typed Optional by IPython)

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.last_trace: Trace | None = None
        self._installed_here = False
        #: the process-wide recording started after the last %%npfunc cell: it is what the
        #: user means by "the last recording", even once switched off
        self._session_is_newer = False

    # -- %%npfunc ------------------------------------------------------------------------------

    @magic_arguments("%npfunc")  # the parser's prog; IPython's help adds one more "%"
    @recording_arguments
    @argument("--quiet", action="store_true", help="after the cell, show only the violations found.")
    @argument("--panel", action="store_true", help="show the live trace panel while the cell runs.")
    @argument(
        "--filter", metavar="PATTERN",
        help="summarise only functions whose name matches: a wildcard such as 'load_*' "
             "(matched against the name or its last dotted part), or 're:REGEX'.",
    )
    @argument("-o", dest="output", metavar="VAR", help="store the Trace in the user variable VAR.")
    @cell_magic("npfunc")
    def npfunc_cell(self, line: str, cell: str) -> None:
        """Run the cell while recording every tf.numpy_function call it reaches.

        Calls inside tf.function, tf.data pipelines and Keras code defined in earlier cells are
        recorded too. After the cell: a per-function table (calls, errors, mean/p50/p99/max
        time, bytes in/out, violations) and the violations found with their call sites.
        The cell behaves as without the magic: its last expression is displayed, and an
        exception propagates (the summary still shows what was recorded before it).
        """
        parsed = self._parse(self.npfunc_cell, line)
        if parsed is None:
            return
        try:
            options = recording_options(parsed)
            include = name_filter(parsed.filter) if parsed.filter is not None else None
            if parsed.output is not None and not parsed.output.isidentifier():
                raise ValueError(f"-o needs a variable name, not {parsed.output!r}")
        except (TypeError, ValueError) as error:
            self._usage(self.npfunc_cell, str(error))
            return
        with trace(**options) as recorded:
            self.last_trace = recorded
            self._session_is_newer = False
            if parsed.output is not None:
                self.shell.user_ns[parsed.output] = recorded
            if parsed.panel:
                self._show_panel(recorded, before_cell=True)
            self._run_cell_body(cell)
        summary = render.summarize(recorded, quiet=parsed.quiet, include=include)
        text = render.summary_text(summary)
        if text:
            _bundle(text, render.summary_html(summary))

    def _run_cell_body(self, cell: str) -> None:
        """Run the cell as IPython would, then hand its value and exception to the outer cell.

        The nested ``run_cell`` shows the traceback itself; copying the exception into the
        outer ExecutionResult makes the cell count as failed (kernels reply 'error', so
        "run all" stops) without a second traceback.
        """
        displayhook = self.shell.displayhook
        outer = displayhook.exec_result
        try:
            inner = self.shell.run_cell(cell, store_history=False)
        finally:
            displayhook.exec_result = outer  # the nested run resets it to None
        if outer is None:
            return
        outer.result = inner.result
        error = inner.error_before_exec or inner.error_in_exec
        if error is not None:
            outer.error_in_exec = error

    def _show_panel(self, source: Trace, before_cell: bool = False) -> None:
        if not shows_widgets(self.shell):
            if before_cell:
                print("tfnp_inspect: the live panel needs a Jupyter front-end; the summary follows the cell")
            else:
                print(render.panel_text(source))
                print("\n(a text snapshot: the live panel needs a Jupyter front-end that draws widgets)")
            return
        try:
            from ..views.panel import TracePanel
        except ImportError as error:
            _error(f"the live panel needs ipywidgets and anywidget: {error}")
            return
        display(TracePanel(source))

    # -- %npfunc -------------------------------------------------------------------------------

    @magic_arguments("npfunc")
    @argument("command", nargs="?", choices=tuple(_ARGUMENT_COUNTS), help="what to do (see above).")
    @argument("arguments", nargs="*", help="N for show, PATH for export, SEQ for replay and debug.")
    @recording_arguments
    @line_magic("npfunc")
    def npfunc_line(self, line: str) -> None:
        """Process-wide recording and inspection of tf.numpy_function calls.

        on [options]   record every call in the process (options as for %%npfunc)
        off            stop recording (what was recorded stays)
        status         is recording on, with which options, how much is kept
        show [N]       the last N invocations (default 20)
        stats          per-function table: calls, errors, times, bytes, violations; then each
                       op's signature, how calls overlapped (threads, calls in flight, share of
                       the wall time) and call sites built into several graphs (retracing)
        shapes         per op and output: the shapes calls returned, the static shape TF knows
                       and the set_shape line to add where it knows less
        violations     the violations found
        clear          forget everything recorded
        export PATH    write the trace to a file
        panel          the live trace panel
        replay SEQ     call the function of invocation SEQ again, eagerly, on its captured
                       inputs (needs capture=full) and show how the result differs
        debug SEQ      the same, stepping through the function in the debugger

        show, stats, shapes, violations, export and panel read the process-wide recorder while
        recording is on (or before any %%npfunc cell ran), else the last %%npfunc cell's trace.
        """
        parsed = self._parse(self.npfunc_line, line)
        if parsed is None:
            return
        command, arguments = parsed.command, parsed.arguments
        if command is None:  # a bare %npfunc: argparse would call the optional arguments required
            listed = ", ".join(_SUBCOMMAND_USAGE.get(name, name) for name in _ARGUMENT_COUNTS)
            self._usage(self.npfunc_line, f"%npfunc needs a subcommand, one of: {listed}")
            return
        try:
            options = recording_options(parsed)
            if options and command != "on":
                raise ValueError(f"recording options apply to '%npfunc on' only, not to {command!r}")
            expected = _ARGUMENT_COUNTS[command]
            if not expected[0] <= len(arguments) <= expected[1]:
                raise ValueError(f"{command!r} takes {_describe_count(expected)}, got {len(arguments)}")
            number = DEFAULT_SHOW
            if command in ("show", "replay", "debug") and arguments:
                number = _positive_number(arguments[0], "N" if command == "show" else "SEQ")
        except (TypeError, ValueError) as error:
            self._usage(self.npfunc_line, str(error))
            return
        if command == "on":
            self._turn_on(options)
        elif command == "off":
            self._turn_off()
        elif command == "status":
            print(self._status())
        elif command == "show":
            invocations = self._source().invocations[-number:]
            _bundle(render.invocations_text(invocations), render.invocations_html(invocations))
        elif command == "stats":
            source = self._source()
            _bundle(render.stats_report_text(source), render.stats_report_html(source))
        elif command == "shapes":
            source = self._source()
            _bundle(render.shapes_text(source), render.shapes_html(source))
        elif command == "violations":
            violations = self._source().violations
            _bundle(render.violations_text(violations), render.violations_html(violations))
        elif command == "clear":
            recorder().clear()
            self.last_trace = None
            print("tfnp_inspect: cleared the recorder and the last %%npfunc trace")
        elif command == "export":
            self._export(arguments[0])
        elif command == "panel":
            self._show_panel(self._source())
        else:
            self._replay(number, debug=command == "debug")

    def _turn_on(self, options: dict[str, Any]) -> None:
        if not is_installed():
            self._installed_here = True
        rec = install(**options)
        self._session_is_newer = True
        print(f"tfnp_inspect: recording every numpy_function call ({describe_options(rec.options)}); "
              "%npfunc off to stop")

    def _turn_off(self) -> None:
        if not is_installed():
            print("tfnp_inspect: process-wide recording is not on")
            return
        uninstall()
        self._installed_here = False
        print(f"tfnp_inspect: recording off; {render.plural(len(recorder()), 'invocation')} kept "
              "(%npfunc clear forgets what was kept)")

    def _status(self) -> str:
        rec = recorder()
        state = "on" if is_installed() else "off"
        lines = [
            f"process-wide recording: {state} ({describe_options(rec.options)})",
            f"recorder(): {len(rec.invocations())} of {render.plural(rec.total, 'call')} kept, "
            f"{rec.dropped} dropped, {render.plural(len(rec.violations()), 'violation')}",
        ]
        if self.last_trace is not None:
            last = self.last_trace
            lines.append(
                f"last %%npfunc cell: {render.plural(last.total, 'call')}, "
                f"{render.plural(len(last.violations), 'violation')}"
            )
        undeclared = render.undeclared_note(self._source())
        if undeclared:
            lines.append(undeclared)
        return "\n".join(lines)

    def _source(self) -> Trace:
        """Whichever recording is newest: the process-wide recorder (on, or switched on after the
        last cell, or no cell yet), else the last ``%%npfunc`` cell's trace."""
        if is_installed() or self._session_is_newer or self.last_trace is None:
            return Trace(recorder())
        return self.last_trace

    def _find(self, seq: int) -> Invocation | None:
        for source in (self.last_trace, Trace(recorder())):
            if source is not None and (found := source.find(seq)) is not None:
                return found
        return None

    def _export(self, path: str) -> None:
        source = self._source()
        try:
            source.export(path)
        except (OSError, ValueError, TypeError) as error:
            _error(f"could not export to {path}: {error}")
            return
        print(f"tfnp_inspect: exported {render.plural(len(source), 'invocation')} to {path}")

    def _replay(self, seq: int, debug: bool) -> None:
        invocation = self._find(seq)
        if invocation is None:
            _error(
                f"no invocation #{seq} in the last %%npfunc trace or the process-wide recorder "
                "(evicted from the ring buffer, or cleared?)"
            )
            return
        runner = _debugger_runner(self.shell.debugger_cls()) if debug else None
        try:
            result = replay(invocation, runner=runner)
        except ReplayError as error:
            _error(str(error))
            return
        if isinstance(result.error, bdb.BdbQuit):
            print("tfnp_inspect: debugger quit before the call returned; nothing to compare")
            return
        display(result)

    # -- shared ---------------------------------------------------------------------------------

    def _parse(self, magic: Callable[..., Any], line: str) -> Namespace | None:
        """Parsed options, or None after printing a usage message (never a traceback)."""
        try:
            # POSIX quoting (as %run does) so that 'a file.json' is one unquoted argument
            return magic.parser.parse_args(arg_split(line, posix=os.name != "nt", strict=True))
        except (UsageError, ValueError) as error:  # ValueError: unbalanced quotes
            self._usage(magic, str(error))
            return None

    @staticmethod
    def _usage(magic: Callable[..., Any], message: str) -> None:
        parser = magic.parser
        usage = " ".join(parser.format_usage().replace("::", "").split())
        print(f"UsageError: {message}\nusage: {usage}\n(see %{parser.prog}? for details)", file=sys.stderr)

    def shutdown(self) -> None:
        """Undo what the magics switched on: process-wide recording started by ``%npfunc on``."""
        if self._installed_here and is_installed():
            uninstall()
        self._installed_here = False
        self.last_trace = None


def shows_widgets(shell: Any) -> bool:
    """Whether the front-end can draw widgets. Only a Jupyter kernel can (ipykernel's shell has
    a ``kernel``, whose comms carry the widget's state); terminal IPython, a plain
    ``InteractiveShell`` and ``ipython script.ipy`` cannot, and get the panel as text. A kernel
    front-end that cannot draw widgets either (jupyter console, a notebook saved as text) shows
    the panel's own text view (``TracePanel``'s text/plain)."""
    return getattr(shell, "kernel", None) is not None


def _describe_count(bounds: tuple[int, int]) -> str:
    low, high = bounds
    if high == 0:
        return "no arguments"
    return "one argument" if low == high else "at most one argument"


def _positive_number(text: str, name: str) -> int:
    try:
        value = int(text.lstrip("#"))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def load_extension(ipython: Any) -> None:
    """Register the magics on ``ipython`` (``%load_ext tfnp_inspect``)."""
    ipython.register_magics(NpFuncMagics(ipython))


def unload_extension(ipython: Any) -> None:
    """Remove the magics and switch off process-wide recording that ``%npfunc on`` started."""
    manager = ipython.magics_manager
    magics = manager.registry.pop(NpFuncMagics.__name__, None)
    if magics is None:
        return
    for table in manager.magics.values():
        for name, func in list(table.items()):
            if getattr(func, "__self__", None) is magics:
                del table[name]
    magics.shutdown()
