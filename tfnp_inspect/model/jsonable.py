"""Values as strict JSON allows them, for every writer of JSON (trace files, the panel's state)."""

from __future__ import annotations

import math
from typing import Any, cast


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities written as None (null), inside dicts and lists too.

    JSON has no NaN or Inf: ``json.dumps(allow_nan=False)`` refuses them and a browser rejects
    the whole message that holds one. NaN is what the model says for "no data" (the mean of no
    calls, the min of an array without finite values), which null says as well.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        mapping = cast("dict[Any, Any]", value)
        return {key: json_safe(item) for key, item in mapping.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in cast("list[Any] | tuple[Any, ...]", value)]
    return value
