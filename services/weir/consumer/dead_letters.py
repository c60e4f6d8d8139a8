"""Messages that can never be stored go to the dead-letter topic, with why and from where."""

from __future__ import annotations

from collections.abc import Sequence

from weir.consumer.decode import DeadLetter
from weir.stream import Message, Producer, Record

REASON = "weir-dlq-reason"
SOURCE_TOPIC = "weir-dlq-topic"
SOURCE_PARTITION = "weir-dlq-partition"
SOURCE_OFFSET = "weir-dlq-offset"
_DLQ_HEADERS = {REASON, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET}


class DeadLetterRatioExceeded(RuntimeError):
    """Too much of a batch is undecodable: likely a bad deploy upstream, so stop, don't drain."""


def check_ratio(dead: int, total: int, max_ratio: float, min_batch: int) -> None:
    if total >= min_batch and dead / total > max_ratio:
        raise DeadLetterRatioExceeded(
            f"{dead} of {total} messages are dead letters (limit {max_ratio:.0%}); stopping"
        )


def to_message(letter: DeadLetter) -> Message:
    record = letter.record
    headers = (
        *(h for h in record.headers if h[0] not in _DLQ_HEADERS),
        (REASON, letter.reason.encode()),
        (SOURCE_TOPIC, record.topic.encode()),
        (SOURCE_PARTITION, str(record.partition).encode()),
        (SOURCE_OFFSET, str(record.offset).encode()),
    )
    return Message(key=record.key, value=record.value, headers=headers)


def replayable(record: Record) -> Message:
    """A dead letter as it was originally produced, for `weir replay-dlq`."""
    headers = tuple(h for h in record.headers if h[0] not in _DLQ_HEADERS)
    return Message(key=record.key, value=record.value, headers=headers)


async def publish(producer: Producer, topic: str, letters: Sequence[DeadLetter]) -> None:
    if letters:
        await producer.send(topic, [to_message(letter) for letter in letters])
