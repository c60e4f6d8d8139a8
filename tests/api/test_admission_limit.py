"""The adaptive in-flight limit (`LatencyLimit` in weir/serving.py), as pure logic: samples carry
their own times, so a fake clock drives it. It falls while sends wait past the target and its cuts
shorten the waits (a queue: the wait grows with what is admitted), undoes a cut that did not
(waits that no cut shortens: a stalled broker, a machine short of CPU), recovers when sends are
fast again, never leaves [floor, ceiling], and ignores the waits of requests admitted under an
earlier limit. And the samples: the api's sends, as the Ingestor times them."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tests.api.doubles import RecordingProducer
from weir.api.errors import ApiError
from weir.api.ingest import Ingestor
from weir.core.config import Settings
from weir.serving import Admission, LatencyLimit
from weir.stream import StreamFull, StreamUnavailable

TARGET = 0.05
WINDOW = LatencyLimit.WINDOW_SECONDS


class FakeTraffic:
    """Sends spread over a window, each finishing `latency` after it started."""

    def __init__(self, limiter: LatencyLimit) -> None:
        self.limiter = limiter
        self.now = 100.0

    def window(self, latency: float, samples: int = 20, slow: float | None = None) -> bool:
        """One window of `samples` sends of `latency` (`slow`: the last of them this slow
        instead); True when the limit changed."""
        changed, last = False, self.now
        for i in range(samples):
            wait = slow if slow is not None and i == samples - 1 else latency
            started = self.now + WINDOW * i / (samples - 1)
            changed |= self.limiter.observe(started, started + wait)
            last = max(last, started + wait)
        self.now = last + 0.001
        return changed

    def queue(self, per_request: float) -> bool:
        """One window of sends that wait in a queue: `per_request` for each request admitted
        (Little's law at a fixed throughput)."""
        return self.window(latency=per_request * self.limiter.limit)

    def idle(self, seconds: float) -> None:
        self.now += seconds


def limiter(floor: int = 8, ceiling: int = 128) -> tuple[LatencyLimit, FakeTraffic]:
    limit = LatencyLimit(floor, ceiling, TARGET, now=100.0)
    return limit, FakeTraffic(limit)


def test_starts_at_the_ceiling_and_stays_there_while_sends_are_fast() -> None:
    limit, traffic = limiter()
    assert limit.limit == 128
    for _ in range(20):
        assert not traffic.window(latency=0.005)
    assert limit.limit == 128


def test_falls_while_its_cuts_shorten_the_waits_down_to_the_floor_and_no_lower() -> None:
    limit, traffic = limiter(floor=8)
    seen = [limit.limit]
    for _ in range(40):
        traffic.queue(per_request=1.0 / 128)  # 1 s at the ceiling: twenty times the target
        seen.append(limit.limit)
    assert seen == sorted(seen, reverse=True), "it only falls while every send is slow"
    assert seen[1] == 64, "twenty times the target: the deepest cut, by half"
    assert limit.limit == 8, "still slow at 8 (62 ms)"


def test_a_cut_that_did_not_shorten_the_waits_is_undone_and_not_tried_again_for_a_while() -> None:
    limit, traffic = limiter(floor=8)
    assert traffic.window(latency=0.5) and limit.limit == 64
    assert traffic.window(latency=0.5) and limit.limit == 128, "undone: the waits stayed"
    held_from = traffic.now
    while traffic.now < held_from + LatencyLimit.HOLD_SECONDS - 1:
        assert not traffic.window(latency=0.5), "slow, but a cut would only refuse work"
    assert limit.limit == 128
    traffic.idle(1)
    assert traffic.window(latency=0.5) and limit.limit == 64, "tried again once the hold is over"
    # Now a queue (0.15 s at 64): the cut halved the wait, so it holds, and the next one follows.
    assert traffic.queue(per_request=0.3 / 128) and limit.limit == 32


def test_a_cut_that_shortened_the_waits_by_half_its_promise_holds() -> None:
    limit, traffic = limiter()
    traffic.window(latency=0.5)  # cut to 64: predicts 0.25 s, undone over 0.375
    assert limit.limit == 64
    traffic.window(latency=0.37)
    assert limit.limit == 32, "held, and cut again: still slow"
    traffic.window(latency=0.37)
    assert limit.limit == 64, "the next cut shortened nothing: undone, to where it was"


def test_a_cut_follows_how_far_the_wait_is_over_the_target() -> None:
    limit, traffic = limiter()
    traffic.window(latency=0.0625)  # 1.25 x the target: cut to 0.8 of the limit
    assert limit.limit == int(128 * 0.8)
    traffic.window(latency=0.051)  # just over: the mildest cut, by a tenth
    assert limit.limit == int(int(128 * 0.8) * 0.9)


def test_recovers_to_the_ceiling_once_sends_are_fast_again() -> None:
    limit, traffic = limiter(floor=8)
    for _ in range(40):
        traffic.queue(per_request=1.0 / 128)
    assert limit.limit == 8
    seen = [limit.limit]
    for _ in range(60):
        traffic.window(latency=0.005)
        seen.append(limit.limit)
    assert seen == sorted(seen), "it only grows while sends are fast"
    assert seen[1] == 9, "by one at least"
    assert limit.limit == 128, "and no higher than the ceiling"


def test_one_slow_send_in_ten_is_tolerated_more_are_not() -> None:
    limit, traffic = limiter()
    traffic.window(latency=0.005, samples=10, slow=1.0)  # 1 in 10: the p90 is under the target
    assert limit.limit == 128
    traffic.window(latency=0.005, samples=9, slow=1.0)  # 1 in 9: over it
    assert limit.limit < 128


def test_waits_of_requests_admitted_under_an_earlier_limit_do_not_cut_again() -> None:
    limit, traffic = limiter()
    started = traffic.now
    # Twenty sends started together, all slow; the window closes at the 8th and cuts.
    changes = [limit.observe(started, started + 1.0 + i * 0.01) for i in range(20)]
    assert changes[LatencyLimit.MIN_SAMPLES - 1] and limit.limit == 64
    assert not any(changes[LatencyLimit.MIN_SAMPLES :]), "the rest began before the cut"
    assert limit.limit == 64


def test_too_few_samples_decide_nothing() -> None:
    limit, traffic = limiter()
    started = traffic.now
    for i in range(LatencyLimit.MIN_SAMPLES - 1):  # however slow, and past the window's end
        assert not limit.observe(started, started + 10.0 + i)
    assert limit.limit == 128
    assert limit.observe(started, started + 20.0), "the next one completes a window"
    assert limit.limit == 64


def test_a_floor_above_the_ceiling_is_the_ceiling() -> None:
    limit, traffic = limiter(floor=50, ceiling=20)
    for _ in range(10):
        traffic.window(latency=1.0)
    assert limit.limit == 20


def test_admission_follows_its_limiter_and_shows_the_limit_as_a_gauge() -> None:
    admission = Admission(16, 1, browsers_in_app=False, floor=4, latency_target=TARGET)
    assert REGISTRY.get_sample_value("weir_http_admission_limit") == 16
    assert admission.admit()
    started = 1e12  # after the admission's creation on any perf_counter
    for i in range(LatencyLimit.MIN_SAMPLES):
        admission.observe(started, started + WINDOW + 1 + i)
    assert admission.limit == 8
    assert REGISTRY.get_sample_value("weir_http_admission_limit") == 8
    for _ in range(admission.limit - 1):
        assert admission.admit()
    assert not admission.admit(), "the new limit is the one that refuses"


def test_without_a_target_the_limit_is_fixed() -> None:
    admission = Admission(16, 1, browsers_in_app=False, floor=4, latency_target=0)
    started = 1e12
    for i in range(100):
        admission.observe(started + i, started + i + 10.0)
    assert admission.limit == 16


async def test_the_ingestor_reports_each_sends_wait_but_not_one_refused_at_once() -> None:
    producer = RecordingProducer()
    samples: list[tuple[float, float]] = []
    ingestor = Ingestor(producer, Settings(), on_sent=lambda *sample: samples.append(sample))  # type: ignore[arg-type]
    window = ingestor.window()
    event = {"event_name": "signup", "channel": "web", "user_id": "u1", "timestamp": window.now}
    events = [Ingestor.prepare(event, window, received_at_ms=window.now * 1000)]
    await ingestor.publish(events, window)
    assert len(samples) == 1 and samples[0][0] <= samples[0][1]
    producer.failure = StreamUnavailable("no ack in time")  # waited: a sample
    with pytest.raises(ApiError):
        await ingestor.publish(events, window)
    assert len(samples) == 2
    producer.failure = StreamFull("20000 messages already await the broker's ack")
    with pytest.raises(ApiError):
        await ingestor.publish(events, window)
    assert len(samples) == 2, "refused by the producer at once: no wait to learn from"
