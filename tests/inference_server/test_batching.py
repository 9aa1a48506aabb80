"""The dynamic batcher on its own: no network, no model (compute is a plain function)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference_server.batching import (
    BatcherClosedError,
    DeadlineExceededError,
    DynamicBatcher,
    QueueFullError,
    plan_pass,
)


class Recorder:
    """compute() that records each pass and can be held closed with a gate."""

    def __init__(self, delay: float = 0.0):
        self.passes: list[list] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, payloads: list) -> list:
        self.started.set()
        self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        self.passes.append(list(payloads))
        return [f"r:{p}" for p in payloads]


def run(coro):
    return asyncio.run(coro)


async def _batcher(rec: Recorder, **kw) -> DynamicBatcher:
    kw.setdefault("max_wait_ms", 0)
    b = DynamicBatcher("t", rec, executor=ThreadPoolExecutor(1), **kw)
    await b.start()
    return b


async def _wait_started(rec: Recorder) -> None:
    while not rec.started.is_set():
        await asyncio.sleep(0.001)


async def _busy_batcher(**kw) -> tuple[Recorder, DynamicBatcher, asyncio.Future]:
    """A batcher whose worker is held inside a pass over one text ("busy") until ``rec.gate`` is set, so
    what the test submits next queues up."""
    rec = Recorder()
    rec.gate.clear()
    b = await _batcher(rec, **kw)
    busy = asyncio.ensure_future(b.submit(["busy"], [3]))
    await _wait_started(rec)
    return rec, b, busy


def test_results_keep_request_order_and_lengths_are_split():
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_padding_ratio=1.25, pad_slack_tokens=1)
        lengths = [15, 2, 7, 3, 16, 2]
        out = await b.submit(list("abcdef"), lengths)
        await b.stop()
        return out, rec

    out, rec = run(main())
    assert out == [f"r:{c}" for c in "abcdef"]
    # sort and split: similar lengths share a pass, short ones never pad to 16
    assert sorted(sorted(p) for p in rec.passes) == [["a", "c", "e"], ["b", "d", "f"]]


def test_plan_pass_grows_around_the_anchor_by_length():
    kw = dict(max_batch_size=8, max_batch_tokens=1000, max_padding_ratio=1.25, pad_slack_tokens=0)
    lengths = [30, 10, 31, 11, 100, 29, 12, 200]
    # the ratio bounds the pass's total padding: 29-31 take one 12 (124 padded <= 1.25 x 102 real)
    assert sorted(plan_pass(lengths, 0, **kw)) == [0, 2, 5, 6]
    assert sorted(plan_pass(lengths, 1, **kw)) == [1, 3, 6]
    assert plan_pass(lengths, 7, **kw) == [7]
    # token budget: never more than 1000 padded tokens, but always the anchor
    assert sorted(plan_pass([300, 300, 300, 300], 0, **kw)) == [0, 1, 2]
    assert plan_pass([5000], 0, **kw) == [0]
    # slack lets very short texts share a pass despite a large relative difference
    assert sorted(plan_pass([3, 6, 5], 0, **{**kw, "pad_slack_tokens": 4})) == [0, 1, 2]


def test_concurrent_requests_share_a_pass():
    async def main():
        rec = Recorder()
        rec.gate.clear()
        b = await _batcher(rec, max_batch_size=32)
        first = asyncio.ensure_future(b.submit(["x0"], [5]))
        await _wait_started(rec)  # worker busy with x0; the next 20 queue up meanwhile
        rest = [asyncio.ensure_future(b.submit([f"y{i}"], [5])) for i in range(20)]
        await asyncio.sleep(0.01)
        rec.gate.set()
        res = await asyncio.gather(first, *rest)
        await b.stop()
        return res, rec

    res, rec = run(main())
    assert [r[0] for r in res] == ["r:x0"] + [f"r:y{i}" for i in range(20)]
    assert [len(p) for p in rec.passes] == [1, 20]


def test_max_batch_size_respected():
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_batch_size=4)
        out = await b.submit(list(range(10)), [3] * 10)
        await b.stop()
        return out, rec

    out, rec = run(main())
    assert out == [f"r:{i}" for i in range(10)]
    assert [len(p) for p in rec.passes] == [4, 4, 2]


def test_token_budget_limits_padded_tokens():
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_batch_size=64, max_batch_tokens=250)
        await b.submit(list(range(7)), [100] * 7)
        # a pass never holds more than 250 padded tokens, but always at least one sequence
        await b.submit(["big"], [120])
        await b.stop()
        return rec

    rec = run(main())
    assert [len(p) for p in rec.passes] == [2, 2, 2, 1, 1]


def test_idle_worker_waits_max_wait_for_a_fuller_pass():
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_batch_size=8, max_wait_ms=80)
        t0 = time.perf_counter()
        first = asyncio.ensure_future(b.submit(["a"], [4]))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(b.submit(["b"], [4]))
        await asyncio.gather(first, second)
        waited = time.perf_counter() - t0
        # a full pass goes at once
        t1 = time.perf_counter()
        await b.submit(list("cdefghij"), [4] * 8)
        full = time.perf_counter() - t1
        await b.stop()
        return rec, waited, full

    rec, waited, full = run(main())
    assert rec.passes[0] == ["a", "b"]  # b joined a's pass thanks to the wait
    assert 0.07 <= waited < 1.0
    assert full < 0.06


def test_queue_full_is_rejected_and_slots_come_back():
    async def main():
        rec, b, busy = await _busy_batcher(max_queue_size=5, max_batch_size=1)
        queued = asyncio.ensure_future(b.submit(list("abcd"), [3] * 4))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await b.submit(["x", "y"], [3, 3])
        assert b.queue_depth == 4
        queued.cancel()  # a cancelled request frees its queue slots at once
        await asyncio.sleep(0)
        assert b.queue_depth == 0
        ok = asyncio.ensure_future(b.submit(list("vwxyz"), [3] * 5))
        rec.gate.set()
        res = await ok
        await busy
        await b.stop()
        return res, rec

    res, rec = run(main())
    assert res == [f"r:{c}" for c in "vwxyz"]
    flat = [p for batch in rec.passes for p in batch]
    assert not set("abcd") & set(flat), "cancelled items must never reach the model"


def test_cancelled_request_is_dropped_and_others_are_served():
    async def main():
        rec, b, busy = await _busy_batcher(max_batch_size=64)
        doomed = asyncio.ensure_future(b.submit([f"d{i}" for i in range(50)], [3] * 50))
        keeper = asyncio.ensure_future(b.submit(["k"], [3]))
        await asyncio.sleep(0.01)
        doomed.cancel()
        rec.gate.set()
        res = await keeper
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await busy
        await b.stop()
        return res, rec

    res, rec = run(main())
    assert res == ["r:k"]
    assert [p for batch in rec.passes for p in batch] == ["busy", "k"]


def test_deadline_passed_in_queue_fails_without_compute():
    async def main():
        rec, b, busy = await _busy_batcher()
        late = asyncio.ensure_future(b.submit(["late"], [3], timeout=0.02))
        fine = asyncio.ensure_future(b.submit(["fine"], [3], timeout=10))
        await asyncio.sleep(0.05)
        rec.gate.set()
        with pytest.raises(DeadlineExceededError):
            await late
        res = await fine
        await busy
        await b.stop()
        return res, rec

    res, rec = run(main())
    assert res == ["r:fine"]
    assert "late" not in [p for batch in rec.passes for p in batch]


def test_failed_pass_fails_only_its_requests():
    calls = []

    def compute(payloads):
        calls.append(list(payloads))
        if "boom" in payloads:
            raise RuntimeError("model exploded")
        return payloads

    async def main():
        b = DynamicBatcher("t", compute, max_wait_ms=0, executor=ThreadPoolExecutor(1))
        await b.start()
        with pytest.raises(RuntimeError, match="exploded"):
            await b.submit(["boom"], [3])
        out = await b.submit(["ok"], [3])
        await b.stop()
        return out

    assert run(main()) == ["ok"]


def test_stop_fails_pending_requests():
    async def main():
        rec, b, busy = await _busy_batcher()
        pending = asyncio.ensure_future(b.submit(["p"], [3]))
        await asyncio.sleep(0.01)
        await b.stop()
        rec.gate.set()
        for fut in (busy, pending):
            with pytest.raises(BatcherClosedError):
                await fut
        with pytest.raises(BatcherClosedError):
            await b.submit(["late"], [3])

    run(main())


def test_oldest_sequence_goes_first_no_starvation():
    async def main():
        rec, b, busy = await _busy_batcher(max_batch_size=2)
        long_ = asyncio.ensure_future(b.submit(["L"], [50]))
        await asyncio.sleep(0)
        shorts = asyncio.ensure_future(b.submit([f"s{i}" for i in range(4)], [3] * 4))
        await asyncio.sleep(0.01)
        rec.gate.set()
        await asyncio.gather(busy, long_, shorts)
        await b.stop()
        return rec

    rec = run(main())
    assert rec.passes[1] == ["L"]  # queued before the shorts, so served before them


def test_lone_client_does_not_wait():
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_batch_size=8, max_wait_ms=200)
        await b.submit(["first"], [4])  # first pass may wait (nothing known yet)
        t0 = time.perf_counter()
        for i in range(3):
            await b.submit([f"x{i}"], [4])  # previous pass held one text: no waiting
        elapsed = time.perf_counter() - t0
        await b.stop()
        return elapsed

    assert run(main()) < 0.15
