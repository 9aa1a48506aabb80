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


# -- priorities, admission and timings ---------------------------------------------------------

from inference_server.batching import Priority, RequestTiming  # noqa: E402


def test_interactive_sequences_go_ahead_of_queued_bulk():
    """A search's query waits for the pass that is running, never for the ingest queued before it."""
    async def main():
        rec, b, busy = await _busy_batcher(max_batch_size=2)
        bulk = asyncio.ensure_future(b.submit([f"p{i}" for i in range(6)], [40] * 6, priority=Priority.BULK))
        await asyncio.sleep(0)
        query = asyncio.ensure_future(b.submit(["q"], [8], priority=Priority.INTERACTIVE))
        await asyncio.sleep(0.01)
        rec.gate.set()
        await asyncio.gather(busy, bulk, query)
        await b.stop()
        return rec

    rec = run(main())
    assert rec.passes[1] == ["q"], rec.passes  # straight after the running pass, ahead of all six passages


def test_bulk_keeps_a_bounded_share_under_search_load():
    """With interactive_burst=2 and both queues full, every third pass is bulk: ingest never starves."""
    async def main():
        rec, b, busy = await _busy_batcher(max_batch_size=1, interactive_burst=2)
        bulk = asyncio.ensure_future(b.submit(["B1", "B2"], [40, 40], priority=Priority.BULK))
        await asyncio.sleep(0)
        queries = asyncio.ensure_future(b.submit([f"q{i}" for i in range(6)], [8] * 6,
                                                 priority=Priority.INTERACTIVE))
        await asyncio.sleep(0.01)
        rec.gate.set()
        await asyncio.gather(busy, bulk, queries)
        await b.stop()
        return rec, b

    rec, b = run(main())
    order = [p[0] for p in rec.passes[1:]]
    assert order == ["q0", "q1", "B1", "q2", "q3", "B2", "q4", "q5"], order
    assert b.stats.batches_by_priority == {"interactive": 6, "bulk": 3}  # the held "busy" pass was bulk


def test_a_full_bulk_queue_does_not_refuse_searches():
    async def main():
        rec, b, busy = await _busy_batcher(max_queue_size=4, max_batch_size=8)
        bulk = asyncio.ensure_future(b.submit(list("abcd"), [3] * 4, priority=Priority.BULK))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="bulk queue is full"):
            await b.submit(["e"], [3], priority=Priority.BULK)
        query = asyncio.ensure_future(b.submit(["q"], [3], priority=Priority.INTERACTIVE))
        await asyncio.sleep(0)
        assert b.queue_depth == 5 and b.queue_depth_of(Priority.INTERACTIVE) == 1
        rec.gate.set()
        out = await query
        await asyncio.gather(busy, bulk)
        await b.stop()
        return out

    assert run(main()) == ["r:q"]


def test_a_request_larger_than_the_queue_runs_when_its_queue_is_empty():
    """e.g. a legal rerank of top_n 1,000 passages with 8 chunks each: it used to be refused forever."""
    async def main():
        rec, b, busy = await _busy_batcher(max_queue_size=4, max_batch_size=16)
        big = asyncio.ensure_future(b.submit([f"c{i}" for i in range(10)], [3] * 10, priority=Priority.INTERACTIVE))
        await asyncio.sleep(0)
        assert b.queue_depth_of(Priority.INTERACTIVE) == 10
        with pytest.raises(QueueFullError):  # while the big one waits, the queue is full for others
            await b.submit(["x"], [3], priority=Priority.INTERACTIVE)
        rec.gate.set()
        out = await big
        await busy
        await b.stop()
        return out

    assert run(main()) == [f"r:c{i}" for i in range(10)]


def test_timing_reports_queue_and_compute_time():
    class Observer:
        def __init__(self):
            self.done = []

        def on_batch(self, *a):
            pass

        def on_queue_depth(self, model, priority, depth):
            assert depth <= 100 and priority in ("interactive", "bulk")

        def on_request_done(self, model, priority, queue_s, compute_s):
            self.done.append((model, priority, queue_s, compute_s))

    async def main():
        obs = Observer()
        rec = Recorder(delay=0.05)
        rec.gate.clear()
        b = DynamicBatcher("enc", rec, max_wait_ms=0, executor=ThreadPoolExecutor(1), observer=obs)
        await b.start()
        busy = asyncio.ensure_future(b.submit(["busy"], [3]))
        await _wait_started(rec)
        timing = RequestTiming()
        query = asyncio.ensure_future(b.submit(["q"], [3], priority=Priority.INTERACTIVE, timing=timing))
        await asyncio.sleep(0.1)  # the query queues behind the held pass
        rec.gate.set()
        await asyncio.gather(busy, query)
        await b.stop()
        return timing, obs

    timing, obs = run(main())
    assert timing.priority is Priority.INTERACTIVE
    assert 0.1 <= timing.queue_seconds < 1.0  # held 0.1 s + the busy pass's 0.05 s
    assert 0.04 <= timing.compute_seconds < 0.5  # its own pass: 0.05 s
    assert [(m, p) for m, p, *_ in obs.done] == [("enc", "bulk"), ("enc", "interactive")]


def test_a_filling_bulk_pass_gives_way_to_a_search():
    """An idle worker waiting to fill a bulk pass stops waiting when a search arrives."""
    async def main():
        rec = Recorder()
        b = await _batcher(rec, max_batch_size=8, max_wait_ms=2000)  # first pass expects 8: waits up to 2 s
        bulk = asyncio.ensure_future(b.submit(["p"], [40], priority=Priority.BULK))
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        out = await b.submit(["q"], [8], priority=Priority.INTERACTIVE)
        waited = time.perf_counter() - t0
        bulk.cancel()
        await b.stop()
        return out, waited

    out, waited = run(main())
    assert out == ["r:q"]
    assert waited < 1.0  # it would wait up to 2 s (the query's own fill wait is bounded from its arrival)


def test_bulk_passes_shrink_to_the_time_target_only_while_searches_are_about():
    """Each pass here takes >= 0.1 s; with a 50 ms target a bulk pass holds one 100-token passage while a search
    was seen recently, and the full token budget otherwise."""
    async def main():
        rec = Recorder(delay=0.1)
        b = await _batcher(rec, max_batch_size=8, max_batch_tokens=1000, bulk_pass_target_ms=50)
        await b.submit(["a", "b"], [100, 100], priority=Priority.BULK)  # learns ~0.5 ms per padded token
        alone = b.pass_token_budget(Priority.BULK, time.monotonic())
        await b.submit(["q"], [8], priority=Priority.INTERACTIVE)
        searching = b.pass_token_budget(Priority.BULK, time.monotonic())
        rec.passes.clear()
        await b.submit(["c", "d", "e"], [100, 100, 100], priority=Priority.BULK)
        later = b.pass_token_budget(Priority.BULK, time.monotonic() + 31)  # no search for 31 s
        await b.stop()
        return alone, searching, later, rec.passes

    alone, searching, later, passes = run(main())
    assert alone == 1000 and later == 1000
    assert 1 <= searching < 200, searching
    assert passes == [["c"], ["d"], ["e"]]
