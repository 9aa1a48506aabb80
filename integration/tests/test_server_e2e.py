"""End-to-end: the real inference server as a subprocess, real models, real channels.

Starts ``sesa-server serve`` twice on free ports with the built-in all-MiniLM-L6-v2 encoder, a
small ESCO concept space (``concepts build --limit``) and a tiny random cross-encoder exported
to ONNX (so Rerank really runs; skipped without torch). Server A uses TLS + a bearer token,
server B mutual TLS. Certificates are made in the test with openssl (or ``cryptography``).
Calls every RPC, the health service, reflection and ``sesa-server info``, and checks that an
unauthenticated call and a client without a certificate are rejected.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

grpc = pytest.importorskip("grpc")

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from inference_server.contract import inference_pb2 as pb  # noqa: E402
from inference_server.contract import inference_pb2_grpc as pbg  # noqa: E402
from integration.tests.inference_servers import CLI, make_certs, server_env  # noqa: E402
from integration.tests.inference_servers import ServerProcess as Server  # noqa: E402

TOKEN = "e2e-token-not-a-secret"
HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None


def _run(args: list[str], timeout: float = 600, env: dict | None = None) -> str:
    r = subprocess.run(CLI + args, capture_output=True, text=True, timeout=timeout, env=env or server_env())
    assert r.returncode == 0, f"{args[0]} failed ({r.returncode}): {r.stderr[-2000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    space = root / "esco-small"
    _run(["concepts", "build", "--vocab", "esco-skills", "--limit", "200", "--out", str(space)])
    reranker = None
    if HAS_TORCH:
        from tests.support.inference import make_tiny_bert

        rr_dir = make_tiny_bert(root / "tiny-reranker", classification=True, seed=3)
        out = _run(["export", "--reranker", str(rr_dir), "--cache-dir", str(root / "cache")])
        reranker = str(Path(json.loads(out.splitlines()[-1])["onnx"]).parent)
    return {"root": root, "space": space, "reranker": reranker, "certs": make_certs(root / "certs")}


@pytest.fixture(scope="module")
def tls_token_server(artifacts):
    c = artifacts["certs"]
    args = ["--concept-space", str(artifacts["space"]), "--metrics-port", "0", "--log-format", "json"]
    if artifacts["reranker"]:
        args += ["--reranker", artifacts["reranker"]]
    env = server_env()
    env.update({"SESA_SERVER_TOKEN": TOKEN, "SESA_SERVER_TLS__CERT_FILE": str(c["server.pem"]),
                "SESA_SERVER_TLS__KEY_FILE": str(c["server.key"])})
    srv = Server(args, artifacts["root"] / "server-a.log", env)
    yield srv
    srv.stop()


def _tls_channel(srv: Server, certs: dict[str, Path], client_cert: bool = False) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        certs["ca.pem"].read_bytes(),
        certs["client.key"].read_bytes() if client_cert else None,
        certs["client.pem"].read_bytes() if client_cert else None,
    )
    return grpc.secure_channel(srv.address, creds)


AUTH = [("authorization", f"Bearer {TOKEN}")]


def test_every_rpc_over_tls_with_token(tls_token_server, artifacts):
    with _tls_channel(tls_token_server, artifacts["certs"]) as ch:
        stub = pbg.InferenceStub(ch)
        h = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert h.status == health_pb2.HealthCheckResponse.SERVING

        info = stub.Info(pb.InfoRequest(), timeout=10, metadata=AUTH)
        enc = info.models[0]
        assert enc.role == "encoder" and enc.dimension == 384 and enc.ref.id == "sentence-transformers/all-MiniLM-L6-v2"
        assert info.concept_space.name == "esco-skills" and info.concept_space.size == 200
        assert info.limits.max_texts_per_call == 2048 and info.device.startswith(("cpu", "cuda"))

        r = stub.Encode(pb.EncodeRequest(texts=["manage a team of musicians", "", "how do vaccines work"],
                                         options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY, top_k_concepts=5,
                                                                  top_labels=3)), timeout=30, metadata=AUTH)
        a, empty, c = r.embeddings
        assert len(a.dense) == 384 and 0 < len(a.concepts) <= 5 and len(a.top_labels) == min(3, len(a.concepts))
        assert all(k.key.startswith("esco-") for k in a.concepts)
        assert empty.error.code == "INVALID_ARGUMENT"
        assert r.dense_model.version == enc.ref.version and r.concept_model.id == "esco-skills"
        # the same text gives the same vector as a second call (deterministic serving)
        again = stub.Encode(pb.EncodeRequest(texts=["how do vaccines work"],
                                             options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)),
                            timeout=30, metadata=AUTH)
        assert max(abs(x - y) for x, y in zip(c.dense, again.embeddings[0].dense)) < 1e-5

        rr_req = pb.RerankRequest(query="vaccines", passages=["Vaccines train the immune system.", "cooking " * 1000],
                                  options=pb.RerankOptions(chunk_long_passages=True, max_chunks=3))
        if artifacts["reranker"]:
            rr = stub.Rerank(rr_req, timeout=30, metadata=AUTH)
            assert len(rr.scores) == 2 and rr.scores[1].chunks == 3 and rr.scores[1].truncated
            assert [m.role for m in info.models] == ["encoder", "reranker"]
        else:
            with pytest.raises(grpc.RpcError) as ei:
                stub.Rerank(rr_req, timeout=30, metadata=AUTH)
            assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        resp = next(iter(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10, metadata=AUTH)))
        assert "sesa.inference.v1.Inference" in {s.name for s in resp.list_services_response.service}


def test_unauthenticated_call_is_rejected(tls_token_server, artifacts):
    with _tls_channel(tls_token_server, artifacts["certs"]) as ch:
        stub = pbg.InferenceStub(ch)
        for md in (None, [("authorization", "Bearer nope")]):
            with pytest.raises(grpc.RpcError) as ei:
                stub.Encode(pb.EncodeRequest(texts=["x"]), timeout=10, metadata=md)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert TOKEN not in tls_token_server.log.read_text()  # never logged


def test_plaintext_client_cannot_talk_to_tls_server(tls_token_server):
    with grpc.insecure_channel(tls_token_server.address) as ch:
        with pytest.raises(grpc.RpcError) as ei:
            pbg.InferenceStub(ch).Info(pb.InfoRequest(), timeout=5, metadata=AUTH)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE


def test_info_cli_and_metrics(tls_token_server, artifacts):
    env = server_env()
    env["SESA_SERVER_TOKEN"] = TOKEN
    out = json.loads(_run(["info", "--address", tls_token_server.address, "--tls-ca",
                           str(artifacts["certs"]["ca.pem"])], timeout=60, env=env))
    assert out["health"] == "SERVING" and out["info"]["concept_space"]["size"] == 200
    import urllib.request

    body = urllib.request.urlopen(f"http://127.0.0.1:{tls_token_server.metrics_port}/metrics", timeout=10).read()
    text = body.decode()
    assert 'sesa_requests_total{code="OK",method="Encode"}' in text
    assert 'code="UNAUTHENTICATED"' in text
    # structured JSON logs, one object per line
    lines = [ln for ln in tls_token_server.log.read_text().splitlines() if ln.startswith("{")]
    assert any(json.loads(ln).get("msg") == "serving" for ln in lines)


def test_mutual_tls(artifacts):
    c = artifacts["certs"]
    env = server_env()
    env.update({"SESA_SERVER_TLS__CERT_FILE": str(c["server.pem"]), "SESA_SERVER_TLS__KEY_FILE": str(c["server.key"]),
                "SESA_SERVER_TLS__CLIENT_CA_FILE": str(c["ca.pem"])})
    srv = Server(["--concept-space", "none", "--no-metrics"], artifacts["root"] / "server-b.log", env)
    try:
        with _tls_channel(srv, c, client_cert=True) as ch:
            r = pbg.InferenceStub(ch).Encode(pb.EncodeRequest(texts=["mutual tls works"]), timeout=30)
            assert len(r.embeddings[0].dense) == 384 and len(r.embeddings[0].concepts) == 0
        with _tls_channel(srv, c, client_cert=False) as ch:
            with pytest.raises(grpc.RpcError) as ei:
                pbg.InferenceStub(ch).Info(pb.InfoRequest(), timeout=5)
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()


def test_serve_imports_only_the_serving_path(artifacts):
    """A real `sesa-server serve` with everything it loads already built imports neither torch, transformers,
    sentence-transformers nor any model-building or tooling module (PYTHONPROFILEIMPORTTIME lists every import
    the process made); its start-up time and resident memory are printed for the README."""
    args = ["--concept-space", str(artifacts["space"]), "--metrics-port", "0"]
    if artifacts["reranker"]:
        args += ["--reranker", artifacts["reranker"]]
    log = artifacts["root"] / "server-imports.log"
    srv = Server(args, log, server_env({"PYTHONPROFILEIMPORTTIME": "1"}))
    try:
        status = Path(f"/proc/{srv.pid}/status").read_text()
        rss_mb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024
        started = srv.start_seconds
    finally:
        srv.stop()
    imported = {line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "inference_server.server" in imported and "onnxruntime" in imported  # the log really lists imports
    forbidden = sorted(m for m in imported
                       if m.split(".")[0] in ("torch", "transformers", "sentence_transformers", "model_building",
                                              "integration", "research", "tests"))
    assert not forbidden, f"serve imported {forbidden[:20]}"
    print(f"\nsesa-server serve: ready in {started:.1f} s, RSS {rss_mb:.0f} MB")
