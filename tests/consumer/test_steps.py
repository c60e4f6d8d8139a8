"""Unit tests of the consumer's steps: decode, batch policy, token, in-batch dedupe, DLQ guard."""

from __future__ import annotations

import msgspec
import pytest

from weir.consumer import dead_letters
from weir.consumer.batch import Batch, BatchPolicy
from weir.consumer.decode import DeadLetter, Decoded, decode, trace_id_of
from weir.consumer.dedupe import MAX_RANGES, time_ranges, unique_in_batch
from weir.core.event import EventIn, StoredEvent
from weir.stream import PlainRecord, Record, TopicPartition

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def record(offset: int, value: bytes, key: bytes | None = None, partition: int = 0) -> Record:
    return PlainRecord("t", partition, offset, key, value, (("traceparent", TRACEPARENT),), 0)


def stored(user: str = "u", event_id: str | None = None) -> StoredEvent:
    event = EventIn.model_validate(
        {"event_name": "e", "channel": "web", "user_id": user, "timestamp": 1000}
    )
    stored = StoredEvent.accept(event, 5)
    return msgspec.structs.replace(stored, event_id=event_id) if event_id else stored


def test_decode_good_record_keeps_the_trace_id() -> None:
    event = stored()
    outcome = decode(record(0, event.encode(), event.event_id.encode()))
    assert isinstance(outcome, Decoded) and outcome.trace_id == "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        (b"garbage", None, "value: not JSON"),
        (b'{"event_name": "e", "received_at": 1}', None, "is required"),
        (stored().encode(), b"another-key", "key: does not match"),
    ],
)
def test_decode_bad_records_become_dead_letters(
    value: bytes, key: bytes | None, reason: str
) -> None:
    outcome = decode(record(0, value, key))
    assert isinstance(outcome, DeadLetter) and reason in outcome.reason


def test_trace_id_absent_or_malformed_is_empty() -> None:
    assert trace_id_of(()) == "" and trace_id_of((("traceparent", b"junk"),)) == ""


def test_batch_offsets_and_token_are_per_partition() -> None:
    batch = Batch()
    polls = [(1, [7]), (0, [3, 4]), (1, [8]), (0, [5])]  # what successive polls return
    for partition, offsets in polls:
        batch.extend([decode(record(o, b"x", partition=partition)) for o in offsets])
    assert {tp.partition: o for tp, o in batch.next_offsets().items()} == {0: 6, 1: 9}
    assert batch.dedup_token() == "t/0:3-5,t/1:7-8"
    assert (len(batch), len(batch.dead), batch.size_bytes) == (5, 5, 5)  # b"x" is no event
    good = stored()
    batch.extend([decode(record(9, good.encode(), key=good.event_id.encode(), partition=1))])
    assert (len(batch.events), batch.next_offsets()[TopicPartition("t", 1)]) == (1, 10)


def test_batch_policy_by_count_bytes_and_age() -> None:
    policy = BatchPolicy(max_events=3, max_bytes=100, max_seconds=1.0)
    batch = Batch()
    assert not policy.is_due(batch)
    batch.extend([decode(record(0, b"x"))])
    assert not policy.is_due(batch, now=batch.opened_at)
    assert policy.is_due(batch, now=(batch.opened_at or 0) + 1.0)
    batch.extend([decode(record(offset, b"x")) for offset in (1, 2)])
    assert policy.is_due(batch, now=batch.opened_at)
    big = Batch()
    big.extend([decode(record(0, b"x" * 100))])
    assert policy.is_due(big, now=big.opened_at)


def test_unique_in_batch_keeps_the_first_copy() -> None:
    first, again, other = stored("a"), stored("a"), stored("b")
    events = [Decoded(record(i, e.encode()), e, b"") for i, e in enumerate([first, again, other])]
    kept = unique_in_batch(events)
    assert [d.record.offset for d in kept] == [0, 2]


def test_time_ranges_split_at_the_widest_gaps() -> None:
    assert time_ranges([]) == []
    assert time_ranges([5, 5, 3]) == [(3, 5)]
    now = 1_800_000_000
    live = [now - s for s in range(30)]  # the last 30 s, one late device a day ago
    assert time_ranges([*live, now - 86_400]) == [(now - 86_400, now - 86_400), (now - 29, now)]
    assert time_ranges([now, now + 60]) == [(now, now + 60)]  # gaps up to a minute stay in
    spread = [now + 1000 * n for n in range(100)]
    ranges = time_ranges(spread)
    assert len(ranges) == MAX_RANGES
    assert all(any(lo <= t <= hi for lo, hi in ranges) for t in spread)
    assert ranges == sorted(ranges) and ranges[0][0] == spread[0] and ranges[-1][1] == spread[-1]


def test_dead_letter_guard() -> None:
    dead_letters.check_ratio(dead=60, total=99, max_ratio=0.5, min_batch=100)  # batch too small
    dead_letters.check_ratio(dead=50, total=100, max_ratio=0.5, min_batch=100)  # at the limit
    with pytest.raises(dead_letters.DeadLetterRatioExceeded):
        dead_letters.check_ratio(dead=51, total=100, max_ratio=0.5, min_batch=100)


def test_dead_letter_headers_and_replay_strip_them() -> None:
    source = record(42, b"garbage", b"k", partition=2)
    message = dead_letters.to_message(DeadLetter(source, "value: not JSON"))
    headers = dict(message.headers)
    assert headers[dead_letters.REASON] == b"value: not JSON"
    assert headers[dead_letters.SOURCE_PARTITION] == b"2"
    assert headers[dead_letters.SOURCE_OFFSET] == b"42"
    as_dead = PlainRecord("dlq", 0, 0, message.key, message.value, message.headers, 0)
    replayed = dead_letters.replayable(as_dead)
    assert dict(replayed.headers) == {"traceparent": TRACEPARENT} and replayed.key == b"k"
