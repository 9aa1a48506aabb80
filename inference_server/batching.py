"""Dynamic batching shared by all concurrent requests of one model (TEI / Triton style).

Why: on a small CPU a forward pass over 8-32 short sequences costs less per sequence than
one pass each, so single-text clients only get good throughput if their texts share passes -
and only if a pass does not pad short texts to the length of long ones. The policy:

* Every sequence of every request joins one FIFO queue per model.
* A pass is formed around the *oldest* queued sequence (no starvation): the first
  ``candidate_window`` live sequences are sorted by length and the pass grows from the
  oldest one to its length neighbours, shorter or longer, whichever adds less padding, while
  it stays within ``max_batch_size`` sequences, ``max_batch_tokens`` padded tokens (always at
  least one sequence) and padding of at most ``max_padding_ratio`` x the real tokens (plus a
  few tokens of slack per sequence). Short queries therefore never pay for long passages, and
  texts of similar length share passes whatever their arrival order (sort, then split).
* An idle worker waits at most ``max_wait_ms`` after the oldest sequence arrived for the
  queue to reach the size of the previous pass (the clients of the last pass are likely about
  to come back); sequences that queued while the model was busy go at once, and a lone client
  (previous pass of one) never waits.
* The queue is bounded (``max_queue_size`` sequences): a request that does not fit fails fast
  with :class:`QueueFullError` (gRPC RESOURCE_EXHAUSTED) instead of growing latency.
* Deadlines and cancellation: a cancelled or expired request's queued sequences are dropped
  before compute and free their queue slots at once; a pass already running finishes and its
  results for that request are discarded. Nothing waits on a cancelled request.
* Model compute runs in an executor thread (one pass at a time per executor), so the asyncio
  loop - and with it gRPC - stays responsive while the model works.

Testable without a network or a model: ``compute`` is any callable from a list of payloads to
a list of results.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


class QueueFullError(Exception):
    """The model's queue cannot take the request now (maps to RESOURCE_EXHAUSTED)."""


class DeadlineExceededError(Exception):
    """The request's deadline passed before its sequences reached the model."""


class BatcherClosedError(Exception):
    """The batcher is shutting down (maps to UNAVAILABLE)."""


class BatchObserver(Protocol):
    """Hook for metrics; all methods are called on the event loop."""

    def on_batch(self, model: str, size: int, tokens: int, padded_tokens: int, seconds: float) -> None: ...

    def on_queue_depth(self, model: str, depth: int) -> None: ...


@dataclass(eq=False)
class _Request:
    future: asyncio.Future
    results: list
    remaining: int
    in_queue: int
    deadline: float | None  # time.monotonic()
    dead: bool = False  # cancelled, expired or failed: drop queued items


@dataclass(eq=False, slots=True)
class _Item:
    seq: int
    length: int
    enqueued: float
    payload: Any
    request: _Request
    index: int


@dataclass
class BatchStats:
    batches: int = 0
    sequences: int = 0
    dropped: int = 0
    sizes: list[int] = field(default_factory=list)


def plan_pass(
    lengths: Sequence[int],
    anchor: int,
    *,
    max_batch_size: int,
    max_batch_tokens: int,
    max_padding_ratio: float,
    pad_slack_tokens: int,
) -> list[int]:
    """Indices (into ``lengths``) of one pass grown around ``anchor`` by length proximity."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    pos = order.index(anchor)
    lo = hi = pos
    longest = lengths[anchor]
    real = lengths[anchor]
    count = 1

    def fits(new_longest: int, new_real: int, new_count: int) -> bool:
        padded = new_longest * new_count
        return (
            new_count <= max_batch_size
            and padded <= max_batch_tokens
            and padded <= max_padding_ratio * new_real + pad_slack_tokens * new_count
        )

    while count < max_batch_size:
        options = []
        if lo > 0:
            ln = lengths[order[lo - 1]]
            options.append((longest * (count + 1) - real - ln, -1, longest, ln))
        if hi < len(order) - 1:
            ln = lengths[order[hi + 1]]
            options.append(((ln * (count + 1)) - real - ln, 1, ln, ln))
        grown = False
        for _waste, side, new_longest, ln in sorted(options):
            if fits(new_longest, real + ln, count + 1):
                if side < 0:
                    lo -= 1
                else:
                    hi += 1
                longest, real, count = new_longest, real + ln, count + 1
                grown = True
                break
        if not grown:
            break
    return [order[i] for i in range(lo, hi + 1)]


class DynamicBatcher:
    """Queue + worker that turns concurrent per-request sequences into model passes."""

    def __init__(
        self,
        name: str,
        compute: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_size: int = 32,
        max_batch_tokens: int = 1024,
        max_wait_ms: float = 3.0,
        max_queue_size: int = 4096,
        max_padding_ratio: float = 1.2,
        pad_slack_tokens: int = 2,
        candidate_window: int = 256,
        executor: Executor | None = None,
        observer: BatchObserver | None = None,
        keep_batch_sizes: bool = False,
    ):
        if max_batch_size < 1 or max_batch_tokens < 1 or max_queue_size < 1:
            raise ValueError("max_batch_size, max_batch_tokens and max_queue_size must be >= 1")
        if max_padding_ratio < 1.0:
            raise ValueError("max_padding_ratio must be >= 1")
        self.name = name
        self._compute = compute
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_size = max_queue_size
        self.max_padding_ratio = max_padding_ratio
        self.pad_slack_tokens = pad_slack_tokens
        self.candidate_window = max(candidate_window, max_batch_size)
        self._queue: deque[_Item] = deque()
        self._executor = executor
        self._observer = observer
        self._seq = itertools.count()
        self._queued = 0  # live queued sequences
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self.stats = BatchStats()
        self._keep_sizes = keep_batch_sizes
        self._last_pass = max_batch_size  # expected fill; the first pass may wait

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the worker task is alive (a stopped or failed-to-start server leaves none)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            it = self._queue.popleft()
            self._fail(it.request, BatcherClosedError(f"{self.name}: server is shutting down"))
        self._queued = 0

    @property
    def queue_depth(self) -> int:
        return self._queued

    # -- submission ------------------------------------------------------------------------

    async def submit(
        self, payloads: Sequence[Any], lengths: Sequence[int], timeout: float | None = None
    ) -> list[Any]:
        """Queue one request's sequences and wait for their results, in input order.

        Raises QueueFullError, DeadlineExceededError, BatcherClosedError, or whatever
        ``compute`` raised for a pass that held one of these sequences.
        """
        n = len(payloads)
        if n != len(lengths):
            raise ValueError("payloads and lengths differ in length")
        if n == 0:
            return []
        if self._closed or self._task is None:
            raise BatcherClosedError(f"{self.name}: batcher is not running")
        if self._queued + n > self.max_queue_size:
            raise QueueFullError(
                f"{self.name} queue is full ({self._queued} queued + {n} new > {self.max_queue_size}); retry later"
            )
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        req = _Request(
            future=loop.create_future(),
            results=[None] * n,
            remaining=n,
            in_queue=n,
            deadline=(now + timeout) if timeout is not None else None,
        )
        self._queue.extend(_Item(next(self._seq), int(length), now, p, req, i)
                           for i, (p, length) in enumerate(zip(payloads, lengths)))
        self._queued += n
        self._depth_changed()
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return await req.future
        except asyncio.CancelledError:
            self._kill(req)
            raise

    # -- internals -------------------------------------------------------------------------

    def _depth_changed(self) -> None:
        if self._observer is not None:
            self._observer.on_queue_depth(self.name, self._queued)

    def _kill(self, req: _Request) -> None:
        """Mark a request dead and free its queue slots (its items are skipped lazily)."""
        if req.dead:
            return
        req.dead = True
        if req.in_queue:
            self._queued -= req.in_queue
            self.stats.dropped += req.in_queue
            req.in_queue = 0
            self._depth_changed()

    def _fail(self, req: _Request, exc: BaseException) -> None:
        self._kill(req)
        if not req.future.done():
            req.future.set_exception(exc)

    def _live_head(self, now: float) -> _Item | None:
        """Drop dead or expired items at the front; return the oldest live one."""
        q = self._queue
        while q:
            it = q[0]
            r = it.request
            if r.dead:
                q.popleft()
            elif r.deadline is not None and now > r.deadline:
                q.popleft()
                self._fail(r, DeadlineExceededError(f"{self.name}: deadline exceeded before the model ran"))
            else:
                return it
        return None

    def _take(self, now: float) -> list[_Item]:
        """Form one pass: sort the oldest candidates by length and split around the oldest."""
        cands: list[_Item] = []
        q = self._queue
        while q and len(cands) < self.candidate_window:
            it = q.popleft()
            r = it.request
            if r.dead:
                continue
            if r.deadline is not None and now > r.deadline:
                self._fail(r, DeadlineExceededError(f"{self.name}: deadline exceeded before the model ran"))
                continue
            cands.append(it)
        if not cands:
            return []
        picked = set(plan_pass([c.length for c in cands], 0, max_batch_size=self.max_batch_size,
                               max_batch_tokens=self.max_batch_tokens, max_padding_ratio=self.max_padding_ratio,
                               pad_slack_tokens=self.pad_slack_tokens))
        batch = [c for i, c in enumerate(cands) if i in picked]
        for i in range(len(cands) - 1, -1, -1):  # the rest goes back, in arrival order
            if i not in picked:
                q.appendleft(cands[i])
        for it in batch:
            it.request.in_queue -= 1
        self._queued -= len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            head = self._live_head(time.monotonic())
            if head is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Idle worker: give the pass up to max_wait (from the oldest arrival) to fill.
            if self.max_wait > 0:
                fill_by = head.enqueued + self.max_wait
                target = min(self.max_batch_size, max(1, self._last_pass))
                while self._queued < target:
                    remaining = fill_by - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
            batch = self._take(time.monotonic())
            if not batch:
                continue
            self._depth_changed()
            payloads = [it.payload for it in batch]
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._compute, payloads)
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: compute returned {len(results)} results for {len(batch)}")
            except asyncio.CancelledError:
                for it in batch:
                    self._fail(it.request, BatcherClosedError(f"{self.name}: server is shutting down"))
                raise
            except Exception as e:  # a failed pass fails exactly the requests it held
                for it in batch:
                    self._fail(it.request, e)
                continue
            dt = time.perf_counter() - t0
            self._last_pass = len(batch)
            self.stats.batches += 1
            self.stats.sequences += len(batch)
            if self._keep_sizes:
                self.stats.sizes.append(len(batch))
            if self._observer is not None:
                tokens = sum(it.length for it in batch)
                padded = max(it.length for it in batch) * len(batch)
                self._observer.on_batch(self.name, len(batch), tokens, padded, dt)
            for it, res in zip(batch, results):
                r = it.request
                if r.dead or r.future.done():
                    continue
                r.results[it.index] = res
                r.remaining -= 1
                if r.remaining == 0:
                    r.future.set_result(r.results)
