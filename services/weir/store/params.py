"""Long lists of strings as query parameters: one hex-encoded JSON array each.

The engine parses a JSON array about 9x faster than an `Array(String)` literal (measured on chDB:
1.3M vs 0.14M ids/s), and hex text needs no escaping on either backend, whatever bytes the
strings hold (the store contract suite stores TAB, LF, backslashes, quotes and NUL).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson


def string_list(name: str) -> str:
    """The set, for `x IN <this>`, of the list passed as parameter `name` (`string_list_value`).

    A subquery, not the array itself: `IN` (or `has`) over a constant array of more than ~25,000
    strings took the engine 10 s instead of 40 ms (chDB 26.9; measured at 20k, 25k, 30k ids),
    and a consumer's batch of 30,000 events looks up that many ids. The subquery's set serves
    the primary key and the skip indexes as the array did (`use_index_for_in_with_subqueries`).
    """
    return f"(SELECT arrayJoin(JSONExtract(unhex({{{name}:String}}), 'Array(String)')))"


def string_list_value(values: Iterable[str]) -> str:
    return orjson.dumps(list(values)).hex()
