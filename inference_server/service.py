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
* queue full -> RESOURCE_EXHAUSTED; deadline passed in the queue -> DEADLINE_EXCEEDED;
  shutting down -> UNAVAILABLE; no reranker configured -> FAILED_PRECONDITION
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np

from inference_server import __version__
from inference_server.batching import BatcherClosedError, DeadlineExceededError, DynamicBatcher, QueueFullError
from inference_server.config import ServerConfig
from inference_server.contract import inference_pb2 as pb2
from inference_server.contract import inference_pb2_grpc as pb2_grpc
from inference_server.metrics import Metrics
from inference_server.runtime.encoder import EncodeItem, EncoderRuntime
from inference_server.runtime.reranker import RerankerRuntime

log = logging.getLogger("inference_server.service")

# Tokenize inline below this many characters per call; above, in a worker thread so that a
# large bulk request does not stall the event loop (and every other client with it).
_INLINE_TOKENIZE_CHARS = 16_000


class _Abort(Exception):
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
        self._tok_exec = tokenize_executor
        head = encoder.head
        self._dense_ref = pb2.ModelRef(id=encoder.meta.model_id, version=encoder.meta.version)
        self._concept_ref = pb2.ModelRef(id=head.name, version=head.version) if head else pb2.ModelRef()
        self._rerank_ref = (
            pb2.ModelRef(id=reranker.meta.model_id, version=reranker.meta.version) if reranker else pb2.ModelRef()
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _run(self, method: str, context: grpc.aio.ServicerContext, coro: Any) -> Any:
        t0 = time.perf_counter()
        code = "OK"
        try:
            return await coro
        except _Abort as a:
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

    def _check_text(self, text: str) -> pb2.ItemError | None:
        if not text or not text.strip():
            return _item_error("INVALID_ARGUMENT", "empty or whitespace-only text")
        if _utf8_len_over(text, self.cfg.limits.max_text_bytes):
            return _item_error(
                "INVALID_ARGUMENT",
                f"text is longer than max_text_bytes={self.cfg.limits.max_text_bytes} UTF-8 bytes",
            )
        return None

    # -- Encode ----------------------------------------------------------------------------

    async def Encode(self, request: pb2.EncodeRequest, context: grpc.aio.ServicerContext) -> pb2.EncodeResponse:
        return await self._run("Encode", context, self._encode(request, context))

    async def _encode(self, request: pb2.EncodeRequest, context: grpc.aio.ServicerContext) -> pb2.EncodeResponse:
        texts = request.texts
        n = len(texts)
        limits = self.cfg.limits
        if n > limits.max_texts_per_call:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{n} texts in one call; the limit is max_texts_per_call={limits.max_texts_per_call}")
        self.metrics.items.labels("Encode").inc(n)
        opts = request.options
        query = opts.kind == pb2.TEXT_KIND_QUERY
        head = self.encoder.head
        ccfg = self.cfg.concepts
        top_k = 0
        if head is not None and not opts.skip_concepts:
            top_k = min(opts.top_k_concepts or ccfg.default_top_k, ccfg.max_top_k)
        top_labels = min(opts.top_labels or ccfg.default_top_labels, top_k)

        embeddings: list[pb2.Embedding | None] = [None] * n
        ok_idx: list[int] = []
        chars = 0
        for i, t in enumerate(texts):
            err = self._check_text(t)
            if err is not None:
                embeddings[i] = pb2.Embedding(error=err)
                self.metrics.item_errors.labels("Encode", err.code).inc()
            else:
                ok_idx.append(i)
                chars += len(t)
        if ok_idx:
            ok_texts = [texts[i] for i in ok_idx]
            seqs = await self._tokenize(self.encoder.tokenize, chars, ok_texts, query)
            items = [EncodeItem(s, top_k) for s in seqs]
            results = await self.encoder_batcher.submit(items, [s.num_tokens for s in seqs],
                                                        timeout=context.time_remaining())
            keys, labels = (head.keys, head.labels) if head is not None else ([], [])
            ntrunc = 0
            for i, seq, res in zip(ok_idx, seqs, results):
                emb = pb2.Embedding(truncated=seq.truncated, num_tokens=seq.num_tokens)
                ntrunc += seq.truncated
                if not opts.skip_dense:
                    emb.dense.extend(res.dense.tolist())
                hits = res.concepts
                if hits is not None and len(hits.indices):
                    idx = hits.indices.tolist()
                    emb.concepts.extend(
                        pb2.Concept(key=keys[j], label=labels[j], weight=w) for j, w in zip(idx, hits.weights.tolist())
                    )
                    emb.top_labels.extend(labels[j] for j in idx[:top_labels])
                embeddings[i] = emb
            if ntrunc:
                self.metrics.truncated.labels("Encode").inc(ntrunc)
        return pb2.EncodeResponse(embeddings=embeddings, dense_model=self._dense_ref, concept_model=self._concept_ref)

    # -- Rerank ----------------------------------------------------------------------------

    async def Rerank(self, request: pb2.RerankRequest, context: grpc.aio.ServicerContext) -> pb2.RerankResponse:
        return await self._run("Rerank", context, self._rerank(request, context))

    async def _rerank(self, request: pb2.RerankRequest, context: grpc.aio.ServicerContext) -> pb2.RerankResponse:
        if self.reranker is None or self.rerank_batcher is None:
            raise _Abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no reranker is configured on this server: set models.reranker to a sequence-classification "
                "model dir or ONNX file (see `sesa-server export --reranker DIR`); Info lists loaded models",
            )
        limits = self.cfg.limits
        n = len(request.passages)
        if n > limits.max_texts_per_call:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"{n} passages in one call; the limit is max_texts_per_call={limits.max_texts_per_call}")
        q = request.query
        if not q.strip():
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "query is empty")
        if _utf8_len_over(q, limits.max_text_bytes):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"query is longer than max_text_bytes={limits.max_text_bytes}")
        self.metrics.items.labels("Rerank").inc(n)
        rcfg = self.cfg.rerank
        chunk = bool(request.options.chunk_long_passages) or rcfg.chunk_by_default
        max_chunks = min(request.options.max_chunks or rcfg.default_max_chunks, 256)

        scores: list[pb2.PassageScore | None] = [None] * n
        ok_idx: list[int] = []
        chars = len(q)
        for i, p in enumerate(request.passages):
            err = self._check_text(p)
            if err is not None:
                scores[i] = pb2.PassageScore(error=err)
                self.metrics.item_errors.labels("Rerank", err.code).inc()
            else:
                ok_idx.append(i)
                chars += min(len(p), 64 * rcfg.max_tokens * max_chunks)
        if ok_idx:
            passages = [request.passages[i] for i in ok_idx]
            plans = await self._tokenize(self.reranker.plan, chars, q, passages, chunk, max_chunks)
            flat = [seq for plan in plans for seq in plan.pairs]
            logits = await self.rerank_batcher.submit(flat, [s.num_tokens for s in flat],
                                                      timeout=context.time_remaining())
            pos = 0
            for i, plan in zip(ok_idx, plans):
                k = len(plan.pairs)
                best = float(np.max(logits[pos: pos + k]))
                pos += k
                scores[i] = pb2.PassageScore(score=best, truncated=plan.truncated, chunks=k)
        return pb2.RerankResponse(scores=scores, model=self._rerank_ref)

    # -- Info ------------------------------------------------------------------------------

    def info(self) -> pb2.InfoResponse:
        models = []
        em = self.encoder.meta
        models.append(pb2.ModelInfo(role="encoder", ref=self._dense_ref, dimension=em.dimension, precision=em.precision,
                                    max_sequence_length=self.encoder.passage_max_tokens, source=em.source))
        if self.reranker is not None:
            rm = self.reranker.meta
            models.append(pb2.ModelInfo(role="reranker", ref=self._rerank_ref, precision=rm.precision,
                                        max_sequence_length=self.reranker.max_tokens, source=rm.source))
        head = self.encoder.head
        cs = (pb2.ConceptSpaceInfo(name=head.name, size=head.size, version=head.version,
                                   default_top_k=self.cfg.concepts.default_top_k) if head else pb2.ConceptSpaceInfo())
        lim = self.cfg.limits
        return pb2.InfoResponse(
            server_version=__version__,
            models=models,
            concept_space=cs,
            device=self.device,
            providers=self.providers,
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
            self._metrics.requests.labels(method.rsplit("/", 1)[-1], "UNAUTHENTICATED").inc()
        log.warning("unauthenticated call rejected", extra={"fields": {"method": method,
                                                                       "had_token": bool(supplied)}})
        return _deny_handler(handler, "missing or invalid bearer token (metadata 'authorization: Bearer <token>')")
