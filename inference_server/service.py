"""The gRPC servicer (Encode / Rerank / Info) and the bearer-token interceptor.

Thin on purpose: validate the request, tokenize, hand sequences to the model's batcher, and
map results and failures onto the contract. Whole-call errors use gRPC status codes; a bad
item inside an otherwise good call gets a per-item ``ItemError`` so one empty text does not
fail a bulk ingest.

Error policy (also in Info.limits):
* more than ``max_texts_per_call`` texts/passages -> INVALID_ARGUMENT (whole call)
* empty or whitespace-only text/passage -> per-item INVALID_ARGUMENT
* text over ``max_text_bytes`` UTF-8 bytes -> per-item INVALID_ARGUMENT; shorter texts that
  exceed the model window are truncated and flagged ``truncated``
* scheduling: ``options.priority``, else query encodes and rerank are INTERACTIVE and passage
  encodes BULK (see ``batching``); every response carries its ``Timing`` (queue, compute,
  tokenize, total, class)
* queue full (per class; a call larger than the whole queue is admitted once its class queue
  is empty) -> RESOURCE_EXHAUSTED; deadline passed in the queue -> DEADLINE_EXCEEDED;
  shutting down -> UNAVAILABLE; no reranker configured -> FAILED_PRECONDITION
* request bytes that are not a valid protobuf message of the method's request type (corrupt
  wire format, a string field holding invalid UTF-8) -> INVALID_ARGUMENT naming the type
* an unknown ``concept_space`` name -> INVALID_ARGUMENT naming the spaces served
* options are clamped, never rejected: top_k_concepts to concepts.max_top_k, top_labels to
  top_k, max_chunks to 256; an unknown TextKind value is treated as PASSAGE (like UNSPECIFIED)

The checks are the pure functions below (``check_text``, ``validate_texts``, ``check_query``,
``encode_options``, ``rerank_options``) so they can be property-tested without a server.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np

from inference_server import __version__
from inference_server.batching import (
    BatcherClosedError,
    DeadlineExceededError,
    DynamicBatcher,
    Priority,
    QueueFullError,
    RequestTiming,
)
from inference_server.config import ChunkingConfig, ConceptsConfig, RerankConfig, ServerConfig
from inference_server.contract import inference_pb2 as pb2
from inference_server.contract import inference_pb2_grpc as pb2_grpc
from inference_server.metrics import Metrics
from inference_server.runtime.domain import DomainBank
from inference_server.runtime.concept_head import concept_segments
from inference_server.runtime.encoder import EncodeItem, EncoderRuntime, EncodeResult, pool_concepts, pool_windows
from inference_server.runtime.reranker import RerankerRuntime

log = logging.getLogger("inference_server.service")

# Tokenize inline below this many characters per call; above, in a worker thread so that a
# large bulk request does not stall the event loop (and every other client with it).
_INLINE_TOKENIZE_CHARS = 16_000


class CallError(Exception):
    """Fail the whole call with this gRPC status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _item_error(code: str, message: str) -> pb2.ItemError:
    return pb2.ItemError(code=code, message=message)


def _utf8_len_over(text: str, limit: int) -> bool:
    n = len(text)
    if n * 4 <= limit:
        return False
    if n > limit:
        return True
    return len(text.encode("utf-8", "surrogatepass")) > limit


# -- request validation (pure) ---------------------------------------------------------------


def check_text(text: str, max_text_bytes: int) -> pb2.ItemError | None:
    """The per-item error for one text or passage, or None when it may be tokenized."""
    if not text or not text.strip():
        return _item_error("INVALID_ARGUMENT", "empty or whitespace-only text")
    if _utf8_len_over(text, max_text_bytes):
        return _item_error("INVALID_ARGUMENT", f"text is longer than max_text_bytes={max_text_bytes} UTF-8 bytes")
    return None


def check_batch_size(n: int, max_texts_per_call: int, what: str = "texts") -> None:
    """Raise CallError(INVALID_ARGUMENT) when a call carries more items than allowed."""
    if n > max_texts_per_call:
        raise CallError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"{n} {what} in one call; the limit is max_texts_per_call={max_texts_per_call}")


def validate_texts(texts: Sequence[str], max_texts_per_call: int, max_text_bytes: int,
                   what: str = "texts") -> list[pb2.ItemError | None]:
    """One entry per text, in order: its ItemError or None. Raises CallError for too many texts."""
    check_batch_size(len(texts), max_texts_per_call, what)
    return [check_text(t, max_text_bytes) for t in texts]


def check_query(query: str, max_text_bytes: int) -> None:
    """Raise CallError(INVALID_ARGUMENT) for an empty or oversize rerank query."""
    if not query.strip():
        raise CallError(grpc.StatusCode.INVALID_ARGUMENT, "query is empty or whitespace-only")
    if _utf8_len_over(query, max_text_bytes):
        raise CallError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"query is longer than max_text_bytes={max_text_bytes} UTF-8 bytes")


def encode_options(opts: pb2.EncodeOptions, has_concepts: bool, ccfg: ConceptsConfig) -> tuple[bool, int, int]:
    """(is_query, top_k, top_labels) for Encode; out-of-range values are clamped, never rejected."""
    query = opts.kind == pb2.TEXT_KIND_QUERY  # UNSPECIFIED, PASSAGE and unknown values: passage
    top_k = 0
    if has_concepts and not opts.skip_concepts:
        top_k = min(opts.top_k_concepts or ccfg.default_top_k, ccfg.max_top_k)
    top_labels = min(opts.top_labels or ccfg.default_top_labels, top_k)
    return query, top_k, top_labels


def call_priority(requested: int, query: bool) -> Priority:
    """The scheduling class of a call: the caller's explicit choice, else interactive for queries (and rerank,
    which passes ``query=True``) and bulk for passages."""
    if requested == pb2.PRIORITY_INTERACTIVE:
        return Priority.INTERACTIVE
    if requested == pb2.PRIORITY_BULK:
        return Priority.BULK
    return Priority.INTERACTIVE if query else Priority.BULK


def timing_message(timing: RequestTiming, tokenize_s: float, started: float) -> pb2.Timing:
    """The contract's Timing of one call from the batcher's record and the servicer's own clock."""
    return pb2.Timing(queue_ms=timing.queue_seconds * 1000.0, compute_ms=timing.compute_seconds * 1000.0,
                      tokenize_ms=tokenize_s * 1000.0, total_ms=(time.perf_counter() - started) * 1000.0,
                      priority=timing.priority.label)


def chunking_options(opts: pb2.Chunking, cfg: ChunkingConfig) -> tuple[int, int, int]:
    """(window, overlap, max_windows) of a chunked Encode; 0 = defaults, values clamped, never rejected (window 0
    means the passage window; the runtime clamps larger ones to it)."""
    overlap = opts.overlap_tokens or cfg.default_overlap_tokens
    max_windows = min(opts.max_windows or cfg.default_max_windows, cfg.max_windows)
    return int(opts.window_tokens), int(overlap), int(max_windows)


class _EmbeddingBuilder:
    """The contract's Embedding of one text from its vector and concept hits."""

    def __init__(self, head: Any, top_labels: int, skip_dense: bool, bank: DomainBank | None):
        self.keys, self.labels = (head.keys, head.labels) if head is not None else ([], [])
        self.top_labels, self.skip_dense, self.bank = top_labels, skip_dense, bank

    def __call__(self, dense: np.ndarray, hits: Any, *, truncated: bool, num_tokens: int) -> pb2.Embedding:
        emb = pb2.Embedding(truncated=truncated, num_tokens=num_tokens)
        if self.bank is not None:
            emb.concept_domain.CopyFrom(_domain_message(self.bank, dense))
        if not self.skip_dense:
            emb.dense.extend(dense.tolist())
        if hits is not None and len(hits.indices):
            idx = hits.indices.tolist()
            keys, labels = self.keys, self.labels
            emb.concepts.extend(pb2.Concept(key=keys[j], label=labels[j], weight=w)
                                for j, w in zip(idx, hits.weights.tolist()))
            emb.top_labels.extend(labels[j] for j in idx[:self.top_labels])
        return emb


def segment_plan(texts: Sequence[str], head: Any, top_k: int, query: bool) -> list[list[str]]:
    """Per text, the segments its concept space pools over (none when the space does not pool texts of this kind,
    or concepts are not asked for)."""
    n = head.segments_for(query) if head is not None and top_k > 0 else 0
    return [concept_segments(t, n) for t in texts] if n else [[] for _ in texts]


def pool_segments(whole: list[EncodeResult], parts: list[EncodeResult], segments: list[list[str]],
                  top_k: int) -> list[EncodeResult]:
    """Each text's result with its concepts pooled over the whole text and its segments (the dense vector stays the
    whole text's)."""
    out, pos = [], 0
    for res, segs in zip(whole, segments):
        mine = parts[pos:pos + len(segs)]
        pos += len(segs)
        out.append(EncodeResult(res.dense, pool_concepts([res.concepts] + [r.concepts for r in mine], top_k))
                   if mine else res)
    return out


def rerank_options(opts: pb2.RerankOptions, rcfg: RerankConfig) -> tuple[bool, int]:
    """(chunk, max_chunks) for Rerank; max_chunks is clamped to 1..256."""
    chunk = bool(opts.chunk_long_passages) or rcfg.chunk_by_default
    max_chunks = min(opts.max_chunks or rcfg.default_max_chunks, 256)
    return chunk, max_chunks


# -- malformed request bytes -----------------------------------------------------------------


class MalformedRequest:
    """Stands in for request bytes that did not parse, so the handler can answer INVALID_ARGUMENT.

    Without it gRPC answers UNKNOWN "Unexpected <class DecodeError>" for a corrupt message.
    """

    __slots__ = ("error", "type_name")

    def __init__(self, type_name: str, error: BaseException):
        self.type_name = type_name
        self.error = error

    def call_error(self) -> CallError:
        detail = str(self.error) or type(self.error).__name__
        return CallError(grpc.StatusCode.INVALID_ARGUMENT,
                         f"malformed request: not a valid {self.type_name} protobuf message ({detail})")


def lenient_deserializer(message_cls: Any) -> Callable[[bytes], Any]:
    """``message_cls.FromString`` that returns a MalformedRequest instead of raising."""
    name = message_cls.DESCRIPTOR.full_name

    def parse(data: bytes) -> Any:
        try:
            return message_cls.FromString(data)
        except Exception as e:  # noqa: BLE001 - DecodeError; RecursionError on absurd nesting
            return MalformedRequest(name, e)

    return parse


def add_inference_service(servicer: InferenceService, server: grpc.aio.Server) -> None:
    """Like the generated ``add_InferenceServicer_to_server`` but with lenient request parsing."""
    methods = {
        "Encode": (servicer.Encode, pb2.EncodeRequest, pb2.EncodeResponse),
        "Rerank": (servicer.Rerank, pb2.RerankRequest, pb2.RerankResponse),
        "Info": (servicer.Info, pb2.InfoRequest, pb2.InfoResponse),
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(fn, request_deserializer=lenient_deserializer(req),
                                                  response_serializer=resp.SerializeToString)
        for name, (fn, req, resp) in methods.items()
    }
    service = pb2.DESCRIPTOR.services_by_name["Inference"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def _domain_message(bank: DomainBank, dense: np.ndarray) -> pb2.DomainCheck:
    """A query's dense embedding checked against a model's domain bank, as the contract reports it."""
    v = bank.check(dense)
    return pb2.DomainCheck(similarity=v.similarity, threshold=v.threshold, in_domain=v.in_domain,
                           reference=bank.reference)


class InferenceService(pb2_grpc.InferenceServicer):
    def __init__(
        self,
        cfg: ServerConfig,
        encoder: EncoderRuntime,
        encoder_batcher: DynamicBatcher,
        reranker: RerankerRuntime | None,
        rerank_batcher: DynamicBatcher | None,
        metrics: Metrics,
        *,
        device: str,
        providers: list[str],
        cpu_features: list[str] | None = None,
        tokenize_executor: Executor | None = None,
    ):
        self.cfg = cfg
        self.encoder = encoder
        self.encoder_batcher = encoder_batcher
        self.reranker = reranker
        self.rerank_batcher = rerank_batcher
        self.metrics = metrics
        self.device = device
        self.providers = providers
        self.cpu_features = list(cpu_features or [])
        self._tok_exec = tokenize_executor
        self._dense_ref = pb2.ModelRef(id=encoder.meta.model_id, version=encoder.meta.version)
        self._rerank_ref = (
            pb2.ModelRef(id=reranker.meta.model_id, version=reranker.meta.version) if reranker else pb2.ModelRef()
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _run(self, method: str, context: grpc.aio.ServicerContext, coro: Any) -> Any:
        t0 = time.perf_counter()
        code = "OK"
        try:
            if method != "Info" and self.cfg.faults.delay_ms > 0:  # injected slowness (faults.delay_ms)
                try:
                    await asyncio.sleep(self.cfg.faults.delay_ms / 1000.0)
                except BaseException:
                    coro.close()
                    raise
            return await coro
        except CallError as a:
            code = a.code.name
            await context.abort(a.code, a.message)
        except QueueFullError as e:
            code = "RESOURCE_EXHAUSTED"
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        except DeadlineExceededError as e:
            code = "DEADLINE_EXCEEDED"
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(e))
        except BatcherClosedError as e:
            code = "UNAVAILABLE"
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError):  # pragma: no cover - abort from below
                raise
            code = "INTERNAL"
            log.exception("%s failed", method, extra={"fields": {"method": method}})
            await context.abort(grpc.StatusCode.INTERNAL, f"{method} failed: {type(e).__name__}: {e}")
        finally:
            dt = time.perf_counter() - t0
            self.metrics.requests.labels(method, code).inc()
            self.metrics.latency.labels(method).observe(dt)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("rpc", extra={"fields": {"method": method, "code": code, "ms": round(dt * 1000, 2)}})

    async def _tokenize(self, fn: Any, chars: int, *args: Any) -> Any:
        if chars <= _INLINE_TOKENIZE_CHARS or self._tok_exec is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._tok_exec, fn, *args)

    # -- Encode ----------------------------------------------------------------------------

    async def Encode(self, request: pb2.EncodeRequest, context: grpc.aio.ServicerContext) -> pb2.EncodeResponse:
        return await self._run("Encode", context, self._encode(request, context))

    async def _encode(self, request: pb2.EncodeRequest, context: grpc.aio.ServicerContext) -> pb2.EncodeResponse:
        if isinstance(request, MalformedRequest):
            raise request.call_error()
        started = time.perf_counter()
        texts = request.texts
        n = len(texts)
        limits = self.cfg.limits
        errors = validate_texts(texts, limits.max_texts_per_call, limits.max_text_bytes, "texts")
        self.metrics.items.labels("Encode").inc(n)
        opts = request.options
        try:
            head = self.encoder.space(opts.concept_space)
        except KeyError as e:
            raise CallError(grpc.StatusCode.INVALID_ARGUMENT, str(e.args[0])) from None
        query, top_k, top_labels = encode_options(opts, head is not None, self.cfg.concepts)
        timing = RequestTiming(priority=call_priority(opts.priority, query))
        tokenize_s = 0.0

        embeddings: list[pb2.Embedding | None] = [None] * n
        ok_idx: list[int] = []
        chars = 0
        for i, (t, err) in enumerate(zip(texts, errors)):
            if err is not None:
                embeddings[i] = pb2.Embedding(error=err)
                self.metrics.item_errors.labels("Encode", err.code).inc()
            else:
                ok_idx.append(i)
                chars += len(t)
        if ok_idx:
            ok_texts = [texts[i] for i in ok_idx]
            t_tok = time.perf_counter()
            if opts.HasField("chunking"):
                window, overlap, max_windows = chunking_options(opts.chunking, self.cfg.chunking)
                plans = await self._tokenize(self.encoder.plan_windows, chars, ok_texts, window, overlap, max_windows,
                                             self.cfg.chunking.last_window == "full")
                seqs = [seq for plan in plans for seq in plan.seqs]
            else:
                plans = None
                # segment pooling (a space that asks for it): each text's segments go through the same pass
                segments = segment_plan(ok_texts, head, top_k, query)
                flat = [seg for segs in segments for seg in segs]
                seqs = await self._tokenize(self.encoder.tokenize, chars + sum(map(len, flat)), ok_texts + flat, query)
            tokenize_s = time.perf_counter() - t_tok
            items = [EncodeItem(s, top_k, head) for s in seqs]
            results = await self.encoder_batcher.submit(items, [s.num_tokens for s in seqs],
                                                        timeout=context.time_remaining(),
                                                        priority=timing.priority, timing=timing)
            if plans is None and len(seqs) > len(ok_texts):
                n_ok = len(ok_texts)
                seqs, results = seqs[:n_ok], pool_segments(results[:n_ok], results[n_ok:], segments, top_k)
            build = _EmbeddingBuilder(head, top_labels, opts.skip_dense, head.domain if head is not None and query
                                      else None)
            ntrunc = 0
            if plans is None:
                for i, seq, res in zip(ok_idx, seqs, results):
                    hits = res.concepts if head is None else head.with_literal(res.concepts, res.dense, texts[i], top_k)
                    embeddings[i] = build(res.dense, hits, truncated=seq.truncated, num_tokens=seq.num_tokens)
                    ntrunc += seq.truncated
            else:
                pos = 0
                for i, plan in zip(ok_idx, plans):
                    window_results = results[pos:pos + len(plan.seqs)]
                    pos += len(plan.seqs)
                    dense, hits = pool_windows(window_results, top_k)
                    if head is not None:
                        hits = head.with_literal(hits, dense, texts[i], top_k)
                    emb = build(dense, hits, truncated=plan.truncated,
                                num_tokens=sum(seq.num_tokens for seq in plan.seqs))
                    emb.coverage = plan.coverage
                    emb.windows.extend(
                        pb2.Window(dense=[] if opts.skip_dense else r.dense.tolist(), start_char=start,
                                   end_char=end, num_tokens=seq.num_tokens)
                        for (start, end, _tokens), seq, r in zip(plan.spans, plan.seqs, window_results))
                    embeddings[i] = emb
                    ntrunc += plan.truncated
            if ntrunc:
                self.metrics.truncated.labels("Encode").inc(ntrunc)
        concept_ref = pb2.ModelRef(id=head.name, version=head.version) if head is not None else pb2.ModelRef()
        return pb2.EncodeResponse(embeddings=embeddings, dense_model=self._dense_ref, concept_model=concept_ref,
                                  timing=timing_message(timing, tokenize_s, started))

    # -- Rerank ----------------------------------------------------------------------------

    async def Rerank(self, request: pb2.RerankRequest, context: grpc.aio.ServicerContext) -> pb2.RerankResponse:
        return await self._run("Rerank", context, self._rerank(request, context))

    async def _rerank(self, request: pb2.RerankRequest, context: grpc.aio.ServicerContext) -> pb2.RerankResponse:
        if isinstance(request, MalformedRequest):
            raise request.call_error()
        if self.reranker is None or self.rerank_batcher is None:
            raise CallError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no reranker is configured on this server: set models.reranker to a sequence-classification "
                "model dir or ONNX file (see `sesa-server export --reranker DIR`); Info lists loaded models",
            )
        limits = self.cfg.limits
        n = len(request.passages)
        check_batch_size(n, limits.max_texts_per_call, "passages")
        q = request.query
        check_query(q, limits.max_text_bytes)
        errors = validate_texts(request.passages, limits.max_texts_per_call, limits.max_text_bytes, "passages")
        self.metrics.items.labels("Rerank").inc(n)
        rcfg = self.cfg.rerank
        chunk, max_chunks = rerank_options(request.options, rcfg)
        started = time.perf_counter()
        timing = RequestTiming(priority=call_priority(request.options.priority, True))
        tokenize_s = 0.0

        domain = (await self._domain_check(q, context, timing.priority)
                  if self.reranker.domain is not None else None)
        if domain is not None and not domain.in_domain and request.options.skip_out_of_domain:
            self.metrics.rerank_out_of_domain.labels("skipped").inc()
            return pb2.RerankResponse(model=self._rerank_ref, domain=domain,
                                      timing=timing_message(timing, tokenize_s, started))
        if domain is not None and not domain.in_domain:
            self.metrics.rerank_out_of_domain.labels("scored").inc()

        scores: list[pb2.PassageScore | None] = [None] * n
        ok_idx: list[int] = []
        chars = len(q)
        for i, (p, err) in enumerate(zip(request.passages, errors)):
            if err is not None:
                scores[i] = pb2.PassageScore(error=err)
                self.metrics.item_errors.labels("Rerank", err.code).inc()
            else:
                ok_idx.append(i)
                chars += min(len(p), 64 * rcfg.max_tokens * max_chunks)
        if ok_idx:
            passages = [request.passages[i] for i in ok_idx]
            t_tok = time.perf_counter()
            plans = await self._tokenize(self.reranker.plan, chars, q, passages, chunk, max_chunks)
            tokenize_s = time.perf_counter() - t_tok
            flat = [seq for plan in plans for seq in plan.pairs]  # admission counts every chunk
            logits = await self.rerank_batcher.submit(flat, [s.num_tokens for s in flat],
                                                      timeout=context.time_remaining(),
                                                      priority=timing.priority, timing=timing)
            pos = 0
            for i, plan in zip(ok_idx, plans):
                k = len(plan.pairs)
                best = float(np.max(logits[pos: pos + k]))
                pos += k
                scores[i] = pb2.PassageScore(score=best, truncated=plan.truncated, chunks=k)
        return pb2.RerankResponse(scores=scores, model=self._rerank_ref, domain=domain,
                                  timing=timing_message(timing, tokenize_s, started))

    async def _domain_check(self, query: str, context: grpc.aio.ServicerContext,
                            priority: Priority) -> pb2.DomainCheck:
        """The query's dense embedding (one Encode item through the encoder batcher) against the reranker's
        domain bank."""
        seqs = await self._tokenize(self.encoder.tokenize, len(query), [query], True)
        (res,) = await self.encoder_batcher.submit([EncodeItem(seqs[0], 0)], [seqs[0].num_tokens],
                                                   timeout=context.time_remaining(), priority=priority)
        return _domain_message(self.reranker.domain, res.dense)

    # -- Info ------------------------------------------------------------------------------

    def info(self) -> pb2.InfoResponse:
        models = []
        em = self.encoder.meta
        models.append(pb2.ModelInfo(role="encoder", ref=self._dense_ref, dimension=em.dimension, precision=em.precision,
                                    max_sequence_length=self.encoder.passage_max_tokens, source=em.source,
                                    engine=em.engine, choice_reason=em.reason))
        if self.reranker is not None:
            rm = self.reranker.meta
            models.append(pb2.ModelInfo(role="reranker", ref=self._rerank_ref, precision=rm.precision,
                                        max_sequence_length=self.reranker.max_tokens, source=rm.source,
                                        engine=rm.engine, choice_reason=rm.reason))
        spaces = [pb2.ConceptSpaceInfo(name=h.name, size=h.size, version=h.version,
                                       default_top_k=self.cfg.concepts.default_top_k) for h in self.encoder.heads]
        cs = spaces[0] if self.encoder.head is not None else pb2.ConceptSpaceInfo()
        lim = self.cfg.limits
        return pb2.InfoResponse(
            server_version=__version__,
            models=models,
            concept_space=cs,
            device=self.device,
            providers=self.providers,
            concept_spaces=spaces,
            cpu_features=self.cpu_features,
            limits=pb2.Limits(
                max_texts_per_call=lim.max_texts_per_call,
                max_text_bytes=lim.max_text_bytes,
                max_batch_tokens=self.cfg.batching.max_batch_tokens,
                max_queue_size=self.cfg.batching.max_queue_size,
                query_max_tokens=self.encoder.query_max_tokens,
                passage_max_tokens=self.encoder.passage_max_tokens,
            ),
        )

    async def Info(self, request: pb2.InfoRequest, context: grpc.aio.ServicerContext) -> pb2.InfoResponse:
        async def _info() -> pb2.InfoResponse:
            if isinstance(request, MalformedRequest):
                raise request.call_error()
            return self.info()

        return await self._run("Info", context, _info())


# -- auth ------------------------------------------------------------------------------------


def _deny_handler(handler: grpc.RpcMethodHandler | None, message: str) -> grpc.RpcMethodHandler:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover

    if handler is None or (not handler.request_streaming and not handler.response_streaming):
        return grpc.unary_unary_rpc_method_handler(unary)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary)
    return grpc.unary_stream_rpc_method_handler(streaming)


# The method names the metrics label: the contract's, health's and reflection's. A caller chooses the path it
# sends, so a rejected call to any other path counts as "unknown" (no unbounded label values).
KNOWN_METHODS = frozenset(m.name for m in pb2.DESCRIPTOR.services_by_name["Inference"].methods) | {
    "Check", "Watch", "List", "ServerReflectionInfo"}


def metric_method(path: str) -> str:
    """The ``method`` label for a call to ``path`` (``/package.Service/Method``)."""
    name = path.rsplit("/", 1)[-1]
    return name if name in KNOWN_METHODS else "unknown"


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Require ``authorization: Bearer <token>`` metadata (constant-time compare)."""

    def __init__(self, token: str, exempt_prefixes: tuple[str, ...] = (), metrics: Metrics | None = None):
        self._token = token.encode("utf-8")
        self._exempt = exempt_prefixes
        self._metrics = metrics

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        method = details.method or ""
        if method.startswith(self._exempt):
            return await continuation(details)
        supplied = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                v = value.decode() if isinstance(value, bytes) else value
                if v[:7].lower() == "bearer ":
                    supplied = v[7:].strip().encode("utf-8")
                break
        if supplied and hmac.compare_digest(supplied, self._token):
            return await continuation(details)
        handler = await continuation(details)
        if self._metrics is not None:
            self._metrics.requests.labels(metric_method(method), "UNAUTHENTICATED").inc()
        log.warning("unauthenticated call rejected", extra={"fields": {"method": method,
                                                                       "had_token": bool(supplied)}})
        return _deny_handler(handler, "missing or invalid bearer token (metadata 'authorization: Bearer <token>')")
