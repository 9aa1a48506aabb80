"""Assemble and run the server: runtimes, batchers, gRPC (health, reflection, auth, TLS), metrics.

``SesaServer`` is usable in-process (tests, benchmarks) with injected runtimes; ``serve``
is what ``sesa-server serve`` runs until SIGINT/SIGTERM, draining gracefully: health goes
NOT_SERVING first, then in-flight calls get ``grace_s`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from inference_server import __version__
from inference_server.batching import DynamicBatcher
from inference_server.config import ServerConfig
from inference_server.contract import inference_pb2 as pb2
from inference_server.metrics import Metrics, start_metrics_http
from inference_server.runtime import cpu_features
from inference_server.runtime.loader import Runtimes, load_runtimes
from inference_server.service import BearerTokenInterceptor, InferenceService, add_inference_service

log = logging.getLogger("inference_server.server")

INFERENCE_SERVICE = pb2.DESCRIPTOR.services_by_name["Inference"].full_name
HEALTH_SERVICE = "grpc.health.v1.Health"


class ServerStartError(RuntimeError):
    pass


def server_credentials(cfg: ServerConfig) -> grpc.ServerCredentials | None:
    tls = cfg.tls
    if not tls.enabled:
        return None
    key = Path(tls.key_file).expanduser().read_bytes()  # type: ignore[arg-type]
    cert = Path(tls.cert_file).expanduser().read_bytes()  # type: ignore[arg-type]
    ca = Path(tls.client_ca_file).expanduser().read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


class SesaServer:
    def __init__(self, cfg: ServerConfig, runtimes: Runtimes | None = None, metrics: Metrics | None = None):
        self.cfg = cfg
        self.runtimes = runtimes
        self.metrics = metrics or Metrics()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._metrics_http = None
        self._health: health.aio.HealthServicer | None = None
        # One model thread per model: a rerank does not wait for an encoder pass, nor the other way round.
        self._model_execs: list[ThreadPoolExecutor] = []
        self._tok_exec = ThreadPoolExecutor(1, thread_name_prefix="sesa-tokenize")
        self.encoder_batcher: DynamicBatcher | None = None
        self.rerank_batcher: DynamicBatcher | None = None
        self.service: InferenceService | None = None

    def _batcher(self, name: str, compute) -> DynamicBatcher:  # type: ignore[no-untyped-def]
        b = self.cfg.batching
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"sesa-{name}")
        self._model_execs.append(executor)
        return DynamicBatcher(
            name, compute, max_batch_size=b.max_batch_size, max_batch_tokens=b.max_batch_tokens,
            max_wait_ms=b.max_wait_ms, max_queue_size=b.max_queue_size, max_padding_ratio=b.max_padding_ratio,
            pad_slack_tokens=b.pad_slack_tokens, candidate_window=b.candidate_window,
            interactive_burst=b.interactive_burst, bulk_pass_target_ms=b.bulk_pass_target_ms or None,
            executor=executor, observer=self.metrics,
        )

    async def start(self) -> int:
        cfg = self.cfg
        if self.runtimes is None:
            loop = asyncio.get_running_loop()
            from inference_server.progress import progress

            self.runtimes = await loop.run_in_executor(None, lambda: load_runtimes(cfg, progress_factory=progress))
        rt = self.runtimes
        try:
            port, token, creds = await self._start_serving(rt)
        except BaseException:
            await self.stop(0)  # batchers, executors and a half-started server do not outlive a failed start
            raise
        log.info(
            "serving",
            extra={"fields": {
                "version": __version__, "address": f"{cfg.host}:{port}", "tls": bool(creds),
                "mtls": bool(cfg.tls.client_ca_file), "auth": bool(token), "device": rt.device.description,
                "encoder": f"{rt.encoder.meta.model_id}@{rt.encoder.meta.version}",
                "concepts": ", ".join(f"{h.name}@{h.version} ({h.size})" for h in rt.encoder.heads) or "none",
                "reranker": f"{rt.reranker.meta.model_id}@{rt.reranker.meta.version}" if rt.reranker else "none",
                "metrics": f"{cfg.metrics.host}:{self.metrics_port}/metrics" if self.metrics_port else "off",
            }},
        )
        if cfg.faults.delay_ms > 0:
            log.warning("FAULT INJECTION: every Encode and Rerank is delayed by %.0f ms (faults.delay_ms); "
                        "remove it outside resilience tests", cfg.faults.delay_ms)
        return port

    async def _start_serving(self, rt: Runtimes) -> tuple[int, str | None, Any]:
        """Batchers, service, gRPC server, health and metrics; (port, token, TLS credentials)."""
        cfg = self.cfg
        token = cfg.auth.resolve_token()
        self.encoder_batcher = self._batcher("encoder", rt.encoder.compute)
        await self.encoder_batcher.start()
        if rt.reranker is not None:
            self.rerank_batcher = self._batcher("reranker", rt.reranker.compute)
            await self.rerank_batcher.start()
        self.service = InferenceService(
            cfg, rt.encoder, self.encoder_batcher, rt.reranker, self.rerank_batcher, self.metrics,
            device=rt.device.description, providers=list(getattr(rt.encoder.backend, "providers", rt.device.providers)),
            cpu_features=cpu_features.detect().found if rt.device.kind == "cpu" else [],
            tokenize_executor=self._tok_exec,
        )
        interceptors = []
        if token:
            exempt = (f"/{HEALTH_SERVICE}/",) if cfg.auth.exempt_health else ()
            interceptors.append(BearerTokenInterceptor(token, exempt, self.metrics))
        opts = [
            ("grpc.max_receive_message_length", cfg.limits.max_message_bytes),
            ("grpc.max_send_message_length", cfg.limits.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.aio.server(interceptors=interceptors, options=opts)
        add_inference_service(self.service, server)  # malformed request bytes -> INVALID_ARGUMENT
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection((INFERENCE_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
        addr = f"{cfg.host}:{cfg.port}"
        creds = server_credentials(cfg)
        try:
            port = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
        except RuntimeError as e:
            raise ServerStartError(f"cannot bind gRPC to {addr}: {e}") from None
        if not port:
            raise ServerStartError(f"cannot bind gRPC to {addr} (port in use?)")
        await server.start()
        self._server = server
        self.port = port
        for svc in ("", INFERENCE_SERVICE):
            await self._health.set(svc, health_pb2.HealthCheckResponse.SERVING)
        if cfg.metrics.enabled:
            try:
                self._metrics_http, self.metrics_port = start_metrics_http(self.metrics, cfg.metrics.host,
                                                                           cfg.metrics.port)
            except OSError as e:
                raise ServerStartError(f"cannot bind metrics to {cfg.metrics.host}:{cfg.metrics.port}: {e.strerror}") from None
        return port, token, creds

    async def stop(self, grace: float | None = None) -> None:
        grace = self.cfg.grace_s if grace is None else grace
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        for b in (self.encoder_batcher, self.rerank_batcher):
            if b is not None:
                await b.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
            self._metrics_http = None
        for executor in self._model_execs:
            executor.shutdown(wait=False, cancel_futures=True)
        self._tok_exec.shutdown(wait=False, cancel_futures=True)

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def _serve_async(cfg: ServerConfig, ready_file: str | None = None) -> None:
    srv = SesaServer(cfg)
    await srv.start()
    if ready_file:
        Path(ready_file).write_text(f"{srv.port}\n{srv.metrics_port or 0}\n", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - non-POSIX
            pass
    await stop.wait()
    log.info("shutting down", extra={"fields": {"grace_s": cfg.grace_s}})
    await srv.stop()


def serve(cfg: ServerConfig, ready_file: str | None = None) -> None:
    asyncio.run(_serve_async(cfg, ready_file))
