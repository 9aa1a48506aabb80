"""Dynamic batching shared by all concurrent requests of one model (TEI / Triton style).

Why: on a small CPU a forward pass over 8-32 short sequences costs less per sequence than
one pass each, so single-text clients only get good throughput if their texts share passes -
and only if a pass does not pad short texts to the length of long ones. The policy:

* Two priority classes per model (:class:`Priority`): INTERACTIVE (query encodes, rerank: a
  search waits for them) and BULK (ingest). Each class has its own FIFO queue and its own
  bound, so a saturating ingest can neither delay a search by more than the pass that is
  running nor fill the queue a search needs.
* The next pass comes from the interactive queue whenever it holds a live sequence, except
  that after ``interactive_burst`` interactive passes in a row while bulk sequences wait, one
  bulk pass runs: bulk keeps at least 1 / (interactive_burst + 1) of the passes under any
  search load, so ingest never starves.
* Within a class a pass is formed around the *oldest* queued sequence (no starvation): the
  first ``candidate_window`` live sequences are sorted by length and the pass grows from the
  oldest one to its length neighbours, shorter or longer, whichever adds less padding, while
  it stays within ``max_batch_size`` sequences, ``max_batch_tokens`` padded tokens (always at
  least one sequence) and padding of at most ``max_padding_ratio`` x the real tokens (plus a
  few tokens of slack per sequence). Short queries therefore never pay for long passages, and
  texts of similar length share passes whatever their arrival order (sort, then split).
* A search waits for the bulk pass that is running, so while searches are about (one seen in the
  last ``interactive_recent_s``) a bulk pass is sized to take about ``bulk_pass_target_ms``: its
  padded-token budget is that time over the measured seconds per padded token of recent bulk
  passes (at least one sequence, at most ``max_batch_tokens``). On a GPU passes are fast and the
  cap never binds; on a small CPU it trades a little ingest efficiency for search latency. Ingest
  alone keeps full passes.
* An idle worker waits at most ``max_wait_ms`` after the oldest sequence of the chosen class
  arrived for that queue to reach the size of the class's previous pass (the clients of the
  last pass are likely about to come back); sequences that queued while the model was busy go
  at once, a lone client (previous pass of one) never waits, and a bulk pass stops waiting as
  soon as an interactive sequence arrives.
* Admission: each class queue is bounded (``max_queue_size`` sequences, counted as the model
  will see them: a rerank request's passage chunks each count). A request that does not fit
  fails fast with :class:`QueueFullError` (gRPC RESOURCE_EXHAUSTED) instead of growing
  latency. A request larger than the whole queue is admitted when its class queue is empty,
  so a legal request is never refused forever; its deadline still bounds it.
* Deadlines and cancellation: a cancelled or expired request's queued sequences are dropped
  before compute and free their queue slots at once; a pass already running finishes and its
  results for that request are discarded. Nothing waits on a cancelled request.
* Timings: a request learns how long it queued and how long the passes that held its
  sequences computed (:class:`RequestTiming`), for the response and the per-class metrics.
* Model compute runs in an executor thread (one pass at a time per executor; each model has
  its own executor, so the reranker and the encoder do not wait for each other), so the
  asyncio loop - and with it gRPC - stays responsive while the model works.

Testable without a network or a model: ``compute`` is any callable from a list of payloads to
a list of results.
"""

from __future__ import annotations

import asyncio
import enum
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


class Priority(enum.IntEnum):
    """Scheduling class of a request's sequences; lower values go first."""

    INTERACTIVE = 0
    BULK = 1

    @property
    def label(self) -> str:
        """The name used in metrics labels and in the contract's ``Timing.priority``."""
        return self.name.lower()


class BatchObserver(Protocol):
    """Hook for metrics; all methods are called on the event loop."""

    def on_batch(self, model: str, size: int, tokens: int, padded_tokens: int, seconds: float) -> None: ...

    def on_queue_depth(self, model: str, priority: str, depth: int) -> None: ...

    def on_request_done(self, model: str, priority: str, queue_seconds: float, compute_seconds: float) -> None: ...


@dataclass
class RequestTiming:
    """Where one request's time inside the batcher went (filled when its last result arrives)."""

    queue_seconds: float = 0.0
    compute_seconds: float = 0.0
    priority: Priority = Priority.BULK


@dataclass(eq=False)
class _Request:
    future: asyncio.Future
    results: list
    remaining: int
    in_queue: int
    deadline: float | None  # time.monotonic()
    priority: Priority
    submitted: float  # time.monotonic()
    compute_seconds: float = 0.0
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
    batches_by_priority: dict[str, int] = field(default_factory=lambda: {p.label: 0 for p in Priority})


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
    """Priority queues + worker that turn concurrent per-request sequences into model passes."""

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
        interactive_burst: int = 4,
        bulk_pass_target_ms: float | None = 50.0,
        interactive_recent_s: float = 30.0,
        executor: Executor | None = None,
        observer: BatchObserver | None = None,
        keep_batch_sizes: bool = False,
    ):
        if max_batch_size < 1 or max_batch_tokens < 1 or max_queue_size < 1:
            raise ValueError("max_batch_size, max_batch_tokens and max_queue_size must be >= 1")
        if max_padding_ratio < 1.0:
            raise ValueError("max_padding_ratio must be >= 1")
        if interactive_burst < 1:
            raise ValueError("interactive_burst must be >= 1")
        self.name = name
        self._compute = compute
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_size = max_queue_size
        self.max_padding_ratio = max_padding_ratio
        self.pad_slack_tokens = pad_slack_tokens
        self.candidate_window = max(candidate_window, max_batch_size)
        self.interactive_burst = interactive_burst
        self.bulk_pass_target = bulk_pass_target_ms / 1000.0 if bulk_pass_target_ms else None
        self.interactive_recent = interactive_recent_s
        self._last_interactive = float("-inf")  # time.monotonic() of the last interactive submission
        self._sec_per_token: float | None = None  # EWMA over bulk passes: seconds per padded token
        self._queues: dict[Priority, deque[_Item]] = {p: deque() for p in Priority}
        self._queued_by: dict[Priority, int] = {p: 0 for p in Priority}  # live queued sequences per class
        self._executor = executor
        self._observer = observer
        self._seq = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self.stats = BatchStats()
        self._keep_sizes = keep_batch_sizes
        # Expected fill of the next pass per class. A first bulk pass may wait for a full pass; a first search
        # does not wait for company it has no evidence of.
        self._last_pass = {Priority.INTERACTIVE: 1, Priority.BULK: max_batch_size}
        self._interactive_streak = 0  # interactive passes in a row while bulk waited

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
        for q in self._queues.values():
            while q:
                it = q.popleft()
                self._fail(it.request, BatcherClosedError(f"{self.name}: server is shutting down"))
        for p in Priority:
            self._queued_by[p] = 0

    @property
    def queue_depth(self) -> int:
        """Live queued sequences, all classes."""
        return sum(self._queued_by.values())

    def queue_depth_of(self, priority: Priority) -> int:
        return self._queued_by[priority]

    # -- submission ------------------------------------------------------------------------

    async def submit(
        self,
        payloads: Sequence[Any],
        lengths: Sequence[int],
        timeout: float | None = None,
        *,
        priority: Priority = Priority.BULK,
        timing: RequestTiming | None = None,
    ) -> list[Any]:
        """Queue one request's sequences and wait for their results, in input order.

        ``timing``, when given, is filled with the request's queue and compute time once it completes.
        Raises QueueFullError, DeadlineExceededError, BatcherClosedError, or whatever
        ``compute`` raised for a pass that held one of these sequences.
        """
        n = len(payloads)
        if n != len(lengths):
            raise ValueError("payloads and lengths differ in length")
        priority = Priority(priority)
        if timing is not None:
            timing.priority = priority
        if n == 0:
            return []
        if self._closed or self._task is None:
            raise BatcherClosedError(f"{self.name}: batcher is not running")
        queued = self._queued_by[priority]
        if queued + n > self.max_queue_size and queued > 0:
            raise QueueFullError(
                f"{self.name} {priority.label} queue is full ({queued} queued + {n} new > "
                f"{self.max_queue_size}); retry later"
            )
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if priority is Priority.INTERACTIVE:
            self._last_interactive = now
        req = _Request(
            future=loop.create_future(),
            results=[None] * n,
            remaining=n,
            in_queue=n,
            deadline=(now + timeout) if timeout is not None else None,
            priority=priority,
            submitted=now,
        )
        self._queues[priority].extend(_Item(next(self._seq), int(length), now, p, req, i)
                                      for i, (p, length) in enumerate(zip(payloads, lengths)))
        self._queued_by[priority] += n
        self._depth_changed()
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            results = await req.future
        except asyncio.CancelledError:
            self._kill(req)
            raise
        if timing is not None:
            total = time.monotonic() - req.submitted
            timing.compute_seconds = req.compute_seconds
            timing.queue_seconds = max(0.0, total - req.compute_seconds)
        return results

    # -- internals -------------------------------------------------------------------------

    def _depth_changed(self) -> None:
        """Report each class's depth: each is bounded by ``max_queue_size`` on its own."""
        if self._observer is not None:
            for p in Priority:
                self._observer.on_queue_depth(self.name, p.label, self._queued_by[p])

    def _kill(self, req: _Request) -> None:
        """Mark a request dead and free its queue slots (its items are skipped lazily)."""
        if req.dead:
            return
        req.dead = True
        if req.in_queue:
            self._queued_by[req.priority] -= req.in_queue
            self.stats.dropped += req.in_queue
            req.in_queue = 0
            self._depth_changed()

    def _fail(self, req: _Request, exc: BaseException) -> None:
        self._kill(req)
        if not req.future.done():
            req.future.set_exception(exc)

    def _expired(self, r: _Request) -> None:
        self._fail(r, DeadlineExceededError(f"{self.name}: deadline exceeded before the model ran"))

    def _live_head(self, priority: Priority, now: float) -> _Item | None:
        """Drop dead or expired items at the front of one class queue; return its oldest live one."""
        q = self._queues[priority]
        while q:
            it = q[0]
            r = it.request
            if r.dead:
                q.popleft()
            elif r.deadline is not None and now > r.deadline:
                q.popleft()
                self._expired(r)
            else:
                return it
        return None

    def _next_class(self, now: float) -> tuple[Priority, _Item] | None:
        """The class the next pass comes from, and that class's oldest live sequence."""
        ih = self._live_head(Priority.INTERACTIVE, now)
        bh = self._live_head(Priority.BULK, now)
        if ih is None and bh is None:
            return None
        if ih is None:
            return Priority.BULK, bh  # type: ignore[return-value]
        if bh is not None and self._interactive_streak >= self.interactive_burst:
            return Priority.BULK, bh
        return Priority.INTERACTIVE, ih

    def pass_token_budget(self, priority: Priority, now: float) -> int:
        """Padded tokens a pass of this class may hold (see the module docstring on bulk passes)."""
        if (priority is Priority.INTERACTIVE or self.bulk_pass_target is None or self._sec_per_token is None
                or now - self._last_interactive > self.interactive_recent):
            return self.max_batch_tokens
        return max(1, min(self.max_batch_tokens, int(self.bulk_pass_target / self._sec_per_token)))

    def _take(self, priority: Priority, now: float) -> list[_Item]:
        """Form one pass of a class: sort its oldest candidates by length and split around the oldest."""
        cands: list[_Item] = []
        q = self._queues[priority]
        while q and len(cands) < self.candidate_window:
            it = q.popleft()
            r = it.request
            if r.dead:
                continue
            if r.deadline is not None and now > r.deadline:
                self._expired(r)
                continue
            cands.append(it)
        if not cands:
            return []
        picked = set(plan_pass([c.length for c in cands], 0, max_batch_size=self.max_batch_size,
                               max_batch_tokens=self.pass_token_budget(priority, now), max_padding_ratio=self.max_padding_ratio,
                               pad_slack_tokens=self.pad_slack_tokens))
        batch = [c for i, c in enumerate(cands) if i in picked]
        for i in range(len(cands) - 1, -1, -1):  # the rest goes back, in arrival order
            if i not in picked:
                q.appendleft(cands[i])
        for it in batch:
            it.request.in_queue -= 1
        self._queued_by[priority] -= len(batch)
        return batch

    async def _fill_wait(self, priority: Priority, head: _Item) -> None:
        """Idle worker: give the pass up to max_wait (from the oldest arrival of its class) to fill.

        A bulk pass stops waiting as soon as an interactive sequence arrives.
        """
        assert self._wakeup is not None
        fill_by = head.enqueued + self.max_wait
        target = min(self.max_batch_size, max(1, self._last_pass[priority]))
        while self._queued_by[priority] < target:
            if priority is Priority.BULK and self._queued_by[Priority.INTERACTIVE] > 0:
                return
            remaining = fill_by - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _account(self, priority: Priority) -> None:
        """Update the class streak that bounds bulk's wait (called when a pass is formed)."""
        if priority is Priority.INTERACTIVE and self._queued_by[Priority.BULK] > 0:
            self._interactive_streak += 1
        else:
            self._interactive_streak = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            chosen = self._next_class(time.monotonic())
            if chosen is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            priority, head = chosen
            if self.max_wait > 0:
                await self._fill_wait(priority, head)
                if priority is Priority.BULK and self._queued_by[Priority.INTERACTIVE] > 0:
                    continue  # a search arrived while the bulk pass was filling: choose again
            batch = self._take(priority, time.monotonic())
            if not batch:
                continue
            self._account(priority)
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
            self._finish_pass(priority, batch, results, dt)

    def _finish_pass(self, priority: Priority, batch: list[_Item], results: Sequence[Any], dt: float) -> None:
        self._last_pass[priority] = len(batch)
        if priority is Priority.BULK:
            padded_tokens = max(it.length for it in batch) * len(batch)
            rate = dt / max(1, padded_tokens)
            self._sec_per_token = rate if self._sec_per_token is None else 0.8 * self._sec_per_token + 0.2 * rate
        self.stats.batches += 1
        self.stats.batches_by_priority[priority.label] += 1
        self.stats.sequences += len(batch)
        if self._keep_sizes:
            self.stats.sizes.append(len(batch))
        if self._observer is not None:
            tokens = sum(it.length for it in batch)
            padded = max(it.length for it in batch) * len(batch)
            self._observer.on_batch(self.name, len(batch), tokens, padded, dt)
        for r in {id(it.request): it.request for it in batch}.values():
            r.compute_seconds += dt  # a shared pass counts whole for every request it held
        for it, res in zip(batch, results):
            r = it.request
            if r.dead or r.future.done():
                continue
            r.results[it.index] = res
            r.remaining -= 1
            if r.remaining == 0:
                r.future.set_result(r.results)
                if self._observer is not None:
                    total = time.monotonic() - r.submitted
                    self._observer.on_request_done(self.name, r.priority.label, max(0.0, total - r.compute_seconds),
                                                   r.compute_seconds)
