"""Status conditions keep Kubernetes semantics: lastTransitionTime moves only on a flip."""

from __future__ import annotations

from weir_operator.conditions import merge_conditions, not_ready, ready


def test_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions(None, [ready()], generation=1, now="2026-01-01T00:00:00Z")
    assert first == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "in sync",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
        }
    ]
    same = merge_conditions(first, [ready(message="again")], 2, now="2026-01-02T00:00:00Z")
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (same[0]["message"], same[0]["observedGeneration"]) == ("again", 2)
    flipped = merge_conditions(same, [not_ready("X", "y")], 3, now="2026-01-03T00:00:00Z")
    assert flipped[0]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
    assert flipped[0]["status"] == "False"


def test_other_condition_types_are_kept() -> None:
    existing = [
        {
            "type": "Degraded",
            "status": "False",
            "reason": "A",
            "message": "",
            "lastTransitionTime": "t",
        }
    ]
    merged = merge_conditions(existing, [ready()], None)
    assert [c["type"] for c in merged] == ["Degraded", "Ready"]
    assert "observedGeneration" not in merged[1]
