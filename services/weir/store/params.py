"""Long lists of strings as query parameters: one hex-encoded JSON array each.

The engine parses a JSON array about 9x faster than an `Array(String)` literal (measured on chDB:
1.3M vs 0.14M ids/s), and hex text needs no escaping on either backend, whatever bytes the
strings hold (the store contract suite stores TAB, LF, backslashes, quotes and NUL).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson


def string_list(name: str) -> str:
    """The SQL expression for the list passed as parameter `name` (`string_list_value`)."""
    return f"JSONExtract(unhex({{{name}:String}}), 'Array(String)')"


def string_list_value(values: Iterable[str]) -> str:
    return orjson.dumps(list(values)).hex()
