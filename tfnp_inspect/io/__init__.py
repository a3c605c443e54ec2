"""Post-mortem file formats over the core: the trace file, Chrome trace events, pandas tables."""

from .chrome import chrome_trace, write_chrome_trace
from .dataframe import to_dataframe
from .trace_file import TraceFileError
from .trace_reader import load
from .trace_writer import export_trace

__all__ = ["TraceFileError", "chrome_trace", "export_trace", "load", "to_dataframe", "write_chrome_trace"]
