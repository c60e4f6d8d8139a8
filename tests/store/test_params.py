"""Long string lists as query parameters: every part under a server's field limit, and the parts
together the list, in order, whatever the strings hold."""

from __future__ import annotations

import orjson

from weir.store.params import MAX_PARAMETER_BYTES, string_list


def decoded(parameters: dict[str, str], name: str) -> list[str]:
    values: list[str] = []
    for n in range(len(parameters)):
        values += orjson.loads(bytes.fromhex(parameters[f"{name}_{n}"]))
    return values


def test_a_short_list_is_one_parameter() -> None:
    sql, parameters = string_list("ids", ["a", "b"])
    assert list(parameters) == ["ids_0"]
    assert "{ids_0:String}" in sql and "arrayConcat" not in sql
    assert decoded(parameters, "ids") == ["a", "b"]


def test_a_long_list_is_cut_under_the_limit_in_order() -> None:
    # A consumer's batch of event ids, and strings that JSON escapes (6 bytes a character).
    values = [f"{n:032x}" for n in range(30_000)] + ["\x00\t" * 64] * 500 + ["é" * 128] * 500
    sql, parameters = string_list("ids", values)
    assert len(parameters) > 1
    assert all(len(part) <= MAX_PARAMETER_BYTES for part in parameters.values())
    assert decoded(parameters, "ids") == values
    assert sql.count("JSONExtract(") == len(parameters) and "arrayConcat(" in sql
