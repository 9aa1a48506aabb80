"""The gRPC service over a real channel, with fake models: contract fields and error paths."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_server.contract import inference_pb2 as pb
from inference_server.contract import inference_pb2_grpc as pbg
from tests.support.inference import ServerThread, fake_runtimes

KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_encode_fills_every_field(stub):
    r = stub.Encode(pb.EncodeRequest(texts=["how do vaccines work", "The immune system learns."],
                                     options=pb.EncodeOptions(kind=pb.TEXT_KIND_PASSAGE, top_k_concepts=5,
                                                              top_labels=2)), timeout=10)
    assert r.dense_model.id == "fake/encoder" and r.dense_model.version == "e1"
    assert r.concept_model.id == "fake-concepts" and r.concept_model.version == "t1"
    assert len(r.embeddings) == 2
    for e in r.embeddings:
        assert not e.HasField("error")
        assert len(e.dense) == 16
        assert abs(sum(x * x for x in e.dense) - 1.0) < 1e-4
        assert 0 < len(e.concepts) <= 5
        weights = [c.weight for c in e.concepts]
        assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
        assert all(KEY_RE.match(c.key) and c.label for c in e.concepts)
        assert list(e.top_labels) == [c.label for c in e.concepts[:2]]
        assert e.num_tokens > 2 and not e.truncated


def test_encode_options_skip_and_defaults(stub):
    r = stub.Encode(pb.EncodeRequest(texts=["alpha beta"], options=pb.EncodeOptions(skip_dense=True)), timeout=10)
    e = r.embeddings[0]
    assert len(e.dense) == 0 and len(e.concepts) > 0
    assert len(e.top_labels) == min(5, len(e.concepts))  # server default top_labels = 5
    r = stub.Encode(pb.EncodeRequest(texts=["alpha beta"], options=pb.EncodeOptions(skip_concepts=True)), timeout=10)
    e = r.embeddings[0]
    assert len(e.dense) == 16 and len(e.concepts) == 0 and len(e.top_labels) == 0


def test_query_and_passage_truncation(stub):
    long = "word " * 1000
    q = stub.Encode(pb.EncodeRequest(texts=[long], options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)), timeout=10)
    p = stub.Encode(pb.EncodeRequest(texts=[long]), timeout=10)  # unspecified = passage
    assert q.embeddings[0].truncated and q.embeddings[0].num_tokens == 64
    assert p.embeddings[0].truncated and p.embeddings[0].num_tokens == 256


def test_empty_and_whitespace_texts_get_item_errors(stub):
    r = stub.Encode(pb.EncodeRequest(texts=["fine", "", "  \n\t", "also fine"]), timeout=10)
    codes = [e.error.code for e in r.embeddings]
    assert codes == ["", "INVALID_ARGUMENT", "INVALID_ARGUMENT", ""]
    assert len(r.embeddings[1].dense) == 0 and len(r.embeddings[1].concepts) == 0
    assert len(r.embeddings[3].dense) == 16


def test_one_megabyte_texts(stub):
    limit = 1_048_576
    just_under = ("lorem ipsum " * (limit // 12))[: limit - 10]
    over = "x" * (limit + 1)
    t0 = time.perf_counter()
    r = stub.Encode(pb.EncodeRequest(texts=[just_under, over, "ok"]), timeout=30)
    assert time.perf_counter() - t0 < 10
    a, b, c = r.embeddings
    assert a.truncated and a.num_tokens == 256 and not a.HasField("error")
    assert b.error.code == "INVALID_ARGUMENT" and "max_text_bytes" in b.error.message
    assert c.num_tokens > 0


def test_too_many_texts_fails_the_call(stub):
    with pytest.raises(grpc.RpcError) as ei:
        stub.Encode(pb.EncodeRequest(texts=["t"] * 10_000), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_texts_per_call=2048" in ei.value.details()
    with pytest.raises(grpc.RpcError) as ei:
        stub.Rerank(pb.RerankRequest(query="q", passages=["p"] * 10_000), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bulk_call_at_the_limit(stub):
    texts = [f"text number {i}" for i in range(2048)]
    r = stub.Encode(pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(skip_concepts=True)), timeout=60)
    assert len(r.embeddings) == 2048 and all(len(e.dense) == 16 for e in r.embeddings)


def test_rerank_scores_chunks_and_errors(stub):
    long = "filler " * 2000 + " vaccines immune"
    r = stub.Rerank(pb.RerankRequest(query="vaccines immune", passages=["vaccines train the immune system", "",
                                                                       "nothing relevant", long],
                                     options=pb.RerankOptions(chunk_long_passages=True, max_chunks=3)), timeout=10)
    assert r.model.id == "fake/reranker"
    s = r.scores
    assert len(s) == 4
    assert s[0].score > s[2].score and s[0].chunks == 1 and not s[0].truncated
    assert s[1].error.code == "INVALID_ARGUMENT"
    assert s[3].chunks == 3 and s[3].truncated  # 2000 words do not fit into 3 windows
    r = stub.Rerank(pb.RerankRequest(query="q", passages=[long]), timeout=10)
    assert r.scores[0].chunks == 1 and r.scores[0].truncated  # chunking off: first window only


def test_rerank_empty_query_is_invalid(stub):
    with pytest.raises(grpc.RpcError) as ei:
        stub.Rerank(pb.RerankRequest(query=" ", passages=["p"]), timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_info_reports_models_limits_device(stub):
    info = stub.Info(pb.InfoRequest(), timeout=10)
    assert info.server_version
    roles = {m.role: m for m in info.models}
    assert set(roles) == {"encoder", "reranker"}
    assert roles["encoder"].dimension == 16 and roles["encoder"].precision == "fp32"
    assert roles["encoder"].max_sequence_length == 256 and roles["encoder"].source
    assert info.concept_space.name == "fake-concepts" and info.concept_space.size == 40
    assert info.concept_space.default_top_k == 32 and info.concept_space.version == "t1"
    assert info.device == "cpu (fake)" and list(info.providers) == ["FakeExecutionProvider"]
    lim = info.limits
    assert (lim.max_texts_per_call, lim.max_text_bytes, lim.max_batch_tokens, lim.max_queue_size,
            lim.query_max_tokens, lim.passage_max_tokens) == (2048, 1_048_576, 1024, 4096, 64, 256)


def test_health_and_reflection(fake_server):
    with grpc.insecure_channel(fake_server.address) as ch:
        h = health_pb2_grpc.HealthStub(ch)
        assert h.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == 1
        assert h.Check(health_pb2.HealthCheckRequest(service="sesa.inference.v1.Inference"), timeout=5).status == 1
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        rs = reflection_pb2_grpc.ServerReflectionStub(ch)
        resp = next(iter(rs.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 timeout=5)))
        names = {s.name for s in resp.list_services_response.service}
        assert {"sesa.inference.v1.Inference", "grpc.health.v1.Health"} <= names


def test_metrics_endpoint(fake_server, stub):
    stub.Encode(pb.EncodeRequest(texts=["metrics please"]), timeout=10)
    body = urllib.request.urlopen(f"http://127.0.0.1:{fake_server.server.metrics_port}/metrics", timeout=5).read()
    text = body.decode()
    assert 'sesa_requests_total{code="OK",method="Encode"}' in text
    assert "sesa_batch_size_bucket" in text and "sesa_tokens_total" in text and "sesa_queue_depth" in text


def test_no_reranker_means_failed_precondition(cfg_factory):
    cfg = cfg_factory()
    with ServerThread(cfg, fake_runtimes(cfg, with_reranker=False, with_concepts=False)) as st:
        with grpc.insecure_channel(st.address) as ch:
            s = pbg.InferenceStub(ch)
            with pytest.raises(grpc.RpcError) as ei:
                s.Rerank(pb.RerankRequest(query="q", passages=["p"]), timeout=5)
            assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "no reranker" in ei.value.details()
            info = s.Info(pb.InfoRequest(), timeout=5)
            assert [m.role for m in info.models] == ["encoder"]
            assert info.concept_space.name == ""
            r = s.Encode(pb.EncodeRequest(texts=["x"]), timeout=5)
            assert len(r.embeddings[0].concepts) == 0 and len(r.embeddings[0].dense) == 16


def test_bearer_token_auth(cfg_factory):
    cfg = cfg_factory(**{"auth.token": "s3cret-token"})
    with ServerThread(cfg, fake_runtimes(cfg)) as st, grpc.insecure_channel(st.address) as ch:
        s = pbg.InferenceStub(ch)
        for md in (None, [("authorization", "Bearer wrong")], [("authorization", "s3cret-token")]):
            with pytest.raises(grpc.RpcError) as ei:
                s.Info(pb.InfoRequest(), timeout=5, metadata=md)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "s3cret" not in ei.value.details()
        assert s.Info(pb.InfoRequest(), timeout=5, metadata=[("authorization", "Bearer s3cret-token")]).models
        # health stays open for load balancers
        h = health_pb2_grpc.HealthStub(ch)
        assert h.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1


def _gated_runtimes(cfg_factory, settings: dict):
    """Fake runtimes whose encoder holds every pass until ``gate`` is set (so requests queue up behind it)."""
    cfg = cfg_factory(**settings)
    rt = fake_runtimes(cfg)
    gate = threading.Event()
    rt.encoder.backend.gate = gate
    return cfg, rt, gate


def test_queue_full_is_resource_exhausted(cfg_factory):
    cfg, rt, gate = _gated_runtimes(cfg_factory, {"batching.max_queue_size": 4, "limits.max_texts_per_call": 4, "batching.max_batch_size": 1})
    with ServerThread(cfg, rt) as st, grpc.insecure_channel(st.address) as ch:
        s = pbg.InferenceStub(ch)
        first = s.Encode.future(pb.EncodeRequest(texts=["a", "b", "c", "d"]), timeout=10)
        time.sleep(0.2)  # a is in the model (held by the gate), b c d queued
        with pytest.raises(grpc.RpcError) as ei:
            s.Encode(pb.EncodeRequest(texts=["e", "f"]), timeout=5)
        assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        gate.set()
        assert len(first.result().embeddings) == 4


def test_client_cancel_mid_batch_keeps_server_serving(cfg_factory):
    cfg, rt, gate = _gated_runtimes(cfg_factory, {"batching.max_batch_size": 4})
    with ServerThread(cfg, rt) as st, grpc.insecure_channel(st.address) as ch:
        s = pbg.InferenceStub(ch)
        big = s.Encode.future(pb.EncodeRequest(texts=[f"doomed {i}" for i in range(200)]), timeout=30)
        time.sleep(0.2)  # its first pass is in the model, 196 texts queued
        big.cancel()
        time.sleep(0.1)
        assert st.server.encoder_batcher.queue_depth == 0  # queued texts dropped at once
        gate.set()
        r = s.Encode(pb.EncodeRequest(texts=["still here"]), timeout=10)
        assert len(r.embeddings[0].dense) == 16
        calls = rt.encoder.backend.calls
        assert sum(calls) <= 8, f"cancelled texts reached the model: {calls}"


def test_deadline_exceeded_while_queued(cfg_factory):
    cfg, rt, gate = _gated_runtimes(cfg_factory, {"batching.max_batch_size": 1})
    with ServerThread(cfg, rt) as st, grpc.insecure_channel(st.address) as ch:
        s = pbg.InferenceStub(ch)
        busy = s.Encode.future(pb.EncodeRequest(texts=["busy"]), timeout=30)
        time.sleep(0.1)
        with pytest.raises(grpc.RpcError) as ei:
            s.Encode(pb.EncodeRequest(texts=["late"]), timeout=0.3)
        assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        gate.set()
        busy.result()
        assert s.Encode(pb.EncodeRequest(texts=["after"]), timeout=5).embeddings[0].num_tokens > 0


def test_rejected_callers_cannot_mint_metric_labels(cfg_factory):
    """An unauthenticated caller chooses the path it sends; the requests metric labels it by a known method name
    or 'unknown', so a scan of random paths cannot grow Prometheus' series without bound."""
    cfg = cfg_factory(**{"auth.token": "s3cret-token-for-tests"})
    with ServerThread(cfg, fake_runtimes(cfg)) as st, grpc.insecure_channel(st.address) as ch:
        for i in range(25):
            call = ch.unary_unary(f"/sesa.inference.v1.Inference/Probe{i}", request_serializer=None,
                                  response_deserializer=None)
            with pytest.raises(grpc.RpcError) as ei:
                call(b"", timeout=5)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError):
            pbg.InferenceStub(ch).Encode(pb.EncodeRequest(texts=["x"]), timeout=5)
        labels = {s.labels["method"] for m in st.server.metrics.registry.collect() if m.name == "sesa_requests"
                  for s in m.samples if s.labels.get("code") == "UNAUTHENTICATED"}
    assert labels == {"unknown", "Encode"}


def test_a_failed_start_stops_what_it_started(cfg_factory):
    """The gRPC port is taken: start fails with ServerStartError and leaves no batcher task or executor running."""
    import asyncio
    import socket

    from inference_server.server import ServerStartError, SesaServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        cfg = cfg_factory(port=taken.getsockname()[1])
        srv = SesaServer(cfg, runtimes=fake_runtimes(cfg))

        async def start_and_fail():
            with pytest.raises(ServerStartError, match="cannot bind gRPC"):
                await srv.start()
            return srv.encoder_batcher

        batcher = asyncio.run(start_and_fail())
    assert batcher is not None and not batcher.running, "the encoder batcher still runs after a failed start"
    assert srv._model_execs and all(e._shutdown for e in srv._model_execs), "a model executor was left open"
    assert srv._tok_exec._shutdown, "the tokenize executor was left open"


def test_responses_carry_the_server_timing_and_priority(stub):
    q = stub.Encode(pb.EncodeRequest(texts=["what causes rain"], options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)),
                    timeout=10)
    p = stub.Encode(pb.EncodeRequest(texts=["Rain forms when droplets grow."]), timeout=10)
    forced = stub.Encode(pb.EncodeRequest(texts=["a passage sent by a search"],
                                          options=pb.EncodeOptions(priority=pb.PRIORITY_INTERACTIVE)), timeout=10)
    r = stub.Rerank(pb.RerankRequest(query="rain", passages=["Rain forms.", "Snow falls."]), timeout=10)
    assert (q.timing.priority, p.timing.priority, forced.timing.priority, r.timing.priority) == (
        "interactive", "bulk", "interactive", "interactive")
    for resp in (q, p, forced, r):
        t = resp.timing
        assert t.compute_ms > 0 and t.queue_ms >= 0 and t.tokenize_ms > 0
        assert t.total_ms >= t.compute_ms + t.tokenize_ms - 0.5  # the parts fit inside the whole call


def test_a_held_encoder_pass_does_not_block_the_reranker(cfg_factory):
    """Each model has its own thread: a rerank completes while an ingest pass of the encoder is stuck."""
    import grpc as _grpc

    cfg = cfg_factory()
    rt = fake_runtimes(cfg)
    gate = threading.Event()
    rt.encoder.backend.gate = gate
    with ServerThread(cfg, rt) as st, _grpc.insecure_channel(st.address) as ch:
        stub = pbg.InferenceStub(ch)
        held = stub.Encode.future(pb.EncodeRequest(texts=["a passage the encoder is stuck on"]), timeout=30)
        deadline = time.time() + 10
        while not rt.encoder.backend.calls and time.time() < deadline:
            time.sleep(0.01)
        assert rt.encoder.backend.calls, "the encoder pass never started"
        try:
            r = stub.Rerank(pb.RerankRequest(query="rain", passages=["Rain forms."]), timeout=5)
            assert len(r.scores) == 1 and not held.done()
        finally:
            gate.set()
        assert len(held.result(10).embeddings) == 1


def _two_space_runtimes(cfg):
    """Fake runtimes serving the default fake space and a second one, "fake-nouns" (other keys and matrix)."""
    import numpy as np

    from inference_server.runtime.concept_head import ConceptHead

    rt = fake_runtimes(cfg)
    rng = np.random.default_rng(7)
    m = rng.normal(size=(12, 16)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    rt.encoder.add_space(ConceptHead(m, [f"noun-{i}" for i in range(12)], [f"noun {i}" for i in range(12)],
                                     name="fake-nouns", version="n1"))
    return rt


def test_a_caller_picks_a_concept_space_by_name(cfg_factory):
    import grpc as _grpc

    cfg = cfg_factory()
    with ServerThread(cfg, _two_space_runtimes(cfg)) as st, _grpc.insecure_channel(st.address) as ch:
        stub = pbg.InferenceStub(ch)
        info = stub.Info(pb.InfoRequest(), timeout=10)
        assert [s.name for s in info.concept_spaces] == ["fake-concepts", "fake-nouns"]
        assert info.concept_space.name == "fake-concepts"
        texts = ["alpha beta gamma", "delta epsilon"]
        default = stub.Encode(pb.EncodeRequest(texts=texts), timeout=10)
        nouns = stub.Encode(pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(concept_space="fake-nouns")),
                            timeout=10)
        assert default.concept_model.id == "fake-concepts" and nouns.concept_model.id == "fake-nouns"
        assert nouns.concept_model.version == "n1"
        assert all(c.key.startswith("c-") for e in default.embeddings for c in e.concepts)
        assert all(c.key.startswith("noun-") and c.label.startswith("noun ") for e in nouns.embeddings for c in e.concepts)
        assert [list(e.dense) for e in nouns.embeddings] == [list(e.dense) for e in default.embeddings]
        # both spaces in one pass (concurrent callers) give what each gets alone
        futures = [stub.Encode.future(pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(concept_space=name)),
                                      timeout=10) for name in ("fake-nouns", "", "fake-nouns", "fake-concepts")]
        got = [[(c.key, round(c.weight, 5)) for e in f.result().embeddings for c in e.concepts] for f in futures]
        alone_nouns = [(c.key, round(c.weight, 5)) for e in nouns.embeddings for c in e.concepts]
        alone_default = [(c.key, round(c.weight, 5)) for e in default.embeddings for c in e.concepts]
        assert got == [alone_nouns, alone_default, alone_nouns, alone_default]
        with pytest.raises(_grpc.RpcError) as ei:
            stub.Encode(pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(concept_space="esco-skills")), timeout=10)
        assert ei.value.code() == _grpc.StatusCode.INVALID_ARGUMENT
        assert "esco-skills" in ei.value.details() and "fake-concepts, fake-nouns" in ei.value.details()


def test_spaces_need_distinct_names_and_the_encoders_dimension(cfg_factory):
    import numpy as np

    from inference_server.runtime.concept_head import ConceptHead

    rt = fake_runtimes(cfg_factory())
    with pytest.raises(ValueError, match="two concept spaces are named 'fake-concepts'"):
        rt.encoder.add_space(rt.encoder.head)
    wrong = ConceptHead(np.eye(4, 8, dtype=np.float32), list("abcd"), list("abcd"), name="narrow")
    with pytest.raises(ValueError, match="dimension 8 but the encoder outputs 16"):
        rt.encoder.add_space(wrong)


def test_a_rerank_with_more_chunks_than_the_queue_holds_is_served(cfg_factory):
    """Admission counts the sequences a call really creates (every chunk); a legal call larger than the whole
    queue runs once its queue is empty instead of being refused (and retried) until its deadline."""
    import grpc as _grpc

    cfg = cfg_factory(**{"batching.max_queue_size": 4, "limits.max_texts_per_call": 4})
    with ServerThread(cfg, fake_runtimes(cfg)) as st, _grpc.insecure_channel(st.address) as ch:
        stub = pbg.InferenceStub(ch)
        long_passage = "rain falls on the plain in spain " * 120  # several 256-token windows
        r = stub.Rerank(pb.RerankRequest(query="rain in spain", passages=[long_passage] * 3,
                                         options=pb.RerankOptions(chunk_long_passages=True, max_chunks=4)), timeout=20)
        assert [s.chunks for s in r.scores] == [4, 4, 4]  # 12 sequences through a queue of 4
        assert all(not s.HasField("error") and s.score > 0 for s in r.scores)


def test_chunked_encode_returns_every_window_and_pools_them(stub):
    text = " ".join(f"Paragraph {i} describes engines, gearboxes and brakes of car number {i}." for i in range(40))
    chunked = pb.EncodeOptions(top_k_concepts=8, chunking=pb.Chunking(window_tokens=64, overlap_tokens=16, max_windows=32))
    r = stub.Encode(pb.EncodeRequest(texts=[text, "A short text."], options=chunked), timeout=20)
    long_, short = r.embeddings
    assert len(long_.windows) > 3 and long_.coverage == pytest.approx(1.0) and not long_.truncated
    spans = [(w.start_char, w.end_char) for w in long_.windows]
    assert spans[0][0] == 0 and spans[-1][1] == len(text) and all(a[1] > b[0] for a, b in zip(spans, spans[1:]))
    # chunking.last_window "full" (the default): the last window is a whole one, not the tail that is left
    assert 64 - 8 < long_.windows[-1].num_tokens <= 64 + 2  # content tokens + [CLS] and [SEP]
    # each window's vector is what Encode gives for that slice alone; the document vector is their normalised mean
    alone = stub.Encode(pb.EncodeRequest(texts=[text[s:e] for s, e in spans], options=pb.EncodeOptions(top_k_concepts=8)),
                        timeout=20)
    for w, a in zip(long_.windows, alone.embeddings):
        assert w.dense == pytest.approx(list(a.dense), abs=1e-5) and w.num_tokens == a.num_tokens
    mean = np.mean([list(w.dense) for w in long_.windows], axis=0)
    assert list(long_.dense) == pytest.approx(list(mean / np.linalg.norm(mean)), abs=1e-5)
    # concepts: each concept's strongest weight over the windows, strongest first
    best: dict[str, float] = {}
    for a in alone.embeddings:
        for c in a.concepts:
            best[c.key] = max(best.get(c.key, 0.0), c.weight)
    expected = sorted(best.items(), key=lambda kv: -kv[1])[:8]
    assert [(c.key, round(c.weight, 5)) for c in long_.concepts] == [(k, round(w, 5)) for k, w in expected]
    assert long_.num_tokens == sum(w.num_tokens for w in long_.windows)
    # a short text is one window, and the same vector as without chunking
    plain = stub.Encode(pb.EncodeRequest(texts=["A short text."]), timeout=10).embeddings[0]
    assert len(short.windows) == 1 and short.windows[0].end_char == len("A short text.")
    assert list(short.dense) == pytest.approx(list(plain.dense), abs=1e-5)


def test_chunked_encode_caps_windows_and_flags_the_rest(stub):
    text = " ".join(f"Sentence {i} is here." for i in range(400))
    opts = pb.EncodeOptions(chunking=pb.Chunking(window_tokens=32, max_windows=2))
    e = stub.Encode(pb.EncodeRequest(texts=[text], options=opts), timeout=20).embeddings[0]
    assert len(e.windows) == 2 and e.truncated and 0 < e.coverage < 0.2
    assert e.windows[1].end_char < len(text)


def test_a_space_with_segment_pooling_maps_each_list_item(cfg_factory):
    """A space whose manifest asks for segment pooling keeps each concept's strongest weight over the whole text and
    its segments (here: the items of a ';' list); the dense vector stays the whole text's, and a default space
    without pooling answers as before."""
    from inference_server.runtime.concept_head import ConceptHead
    from tests.support.inference import fake_concept_head

    cfg = cfg_factory()
    runtimes = fake_runtimes(cfg)
    base = fake_concept_head(16, seed=3)
    pooled = ConceptHead(base.matrix, base.keys, base.labels, name="pooled", version="p1",
                         manifest={"assignment": {"pool": "segments", "max_segments": 8}})
    assert pooled.max_segments == 8 and base.max_segments == 0
    queries_only = ConceptHead(base.matrix, base.keys, base.labels, name="pooled-queries", version="q1",
                               manifest={"assignment": {"pool": "segments", "max_segments": 8, "kinds": ["query"]}})
    assert queries_only.segments_for(query=True) == 8 and queries_only.segments_for(query=False) == 0
    runtimes.encoder.add_space(pooled)
    runtimes.encoder.add_space(queries_only)
    items = ["repair engines", "bake bread", "install kerbstones"]
    text = "; ".join(items)
    with ServerThread(cfg, runtimes) as st, grpc.insecure_channel(st.address) as ch:
        stub = pbg.InferenceStub(ch)

        def encode(texts, space, k=40):
            opts = pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY, top_k_concepts=k, concept_space=space)
            return stub.Encode(pb.EncodeRequest(texts=texts, options=opts), timeout=10).embeddings

        whole, = encode([text], "pooled", k=6)
        alone = encode(items, "pooled")  # one segment each: nothing to pool
        own = pooled.top_k(np.array([list(whole.dense)], dtype=np.float32), 40)[0]  # the whole text's vector alone
        best = {pooled.keys[i]: float(w) for i, w in zip(own.indices, own.weights)}
        for e in alone:
            for c in e.concepts:
                best[c.key] = max(best.get(c.key, 0.0), c.weight)
        expected = sorted(best.items(), key=lambda kv: -kv[1])[:6]
        assert [(c.key, round(c.weight, 4)) for c in whole.concepts] == [(k, round(w, 4)) for k, w in expected]
        assert [c.key for c in whole.concepts] != [pooled.keys[i] for i in own.indices[:6]], "the items changed them"
        plain, = stub.Encode(pb.EncodeRequest(texts=[text], options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)),
                             timeout=10).embeddings
        assert list(whole.dense) == pytest.approx(list(plain.dense), abs=1e-6), "the dense vector is the text's"
        assert whole.num_tokens == plain.num_tokens, "the text's own tokens, not its segments'"
        # the default space (other rows) does not pool: its concepts are those of the whole text's vector alone
        default_whole, = encode([text], "", k=6)
        own = runtimes.encoder.head.top_k(np.array([list(default_whole.dense)], dtype=np.float32), 6)[0]
        assert [c.key for c in default_whole.concepts] == [runtimes.encoder.head.keys[i] for i in own.indices]
        # a space that pools queries only: a query pools as above, a document is its whole text's vector alone
        as_query, = encode([text], "pooled-queries", k=6)
        assert [c.key for c in as_query.concepts] == [c.key for c in whole.concepts]
        doc = stub.Encode(pb.EncodeRequest(texts=[text], options=pb.EncodeOptions(
            kind=pb.TEXT_KIND_PASSAGE, top_k_concepts=6, concept_space="pooled-queries")), timeout=10).embeddings[0]
        own = queries_only.top_k(np.array([list(doc.dense)], dtype=np.float32), 6)[0]
        assert [c.key for c in doc.concepts] == [queries_only.keys[i] for i in own.indices]
        # a one-segment text is unchanged
        one, = encode(["repair engines"], "pooled", k=6)
        assert [c.key for c in one.concepts] == [c.key for c in alone[0].concepts[:6]]


def test_concept_segments_split_lists_sentences_and_lines():
    from inference_server.runtime.concept_head import concept_segments

    assert concept_segments("ensure quality; troubleshoot;  meet deadlines ", 32) == [
        "ensure quality", "troubleshoot", "meet deadlines"]
    assert concept_segments("We need Python. You will build APIs!\n- Docker\n\u2022 Kubernetes", 32) == [
        "We need Python.", "You will build APIs!", "Docker", "Kubernetes"]
    assert concept_segments("one sentence, no list", 32) == [] and concept_segments("version 3.5 is out", 32) == []
    assert concept_segments("a; b; c", 2) == ["a", "b"], "capped"
    assert concept_segments(";; ;", 4) == [] and concept_segments("x; ;", 4) == []


def test_literal_evidence_lifts_the_concepts_a_text_names(cfg_factory):
    """A space with a literal boost: a concept whose label or alias the text names word for word gets the boost on
    top of its own weight and joins the top-k; other concepts keep their weights; a space without it is unchanged."""
    from inference_server.runtime.concept_head import ConceptHead
    from tests.support.inference import fake_concept_head

    cfg = cfg_factory()
    runtimes = fake_runtimes(cfg)
    base = fake_concept_head(16, seed=5)
    labels = list(base.labels)
    labels[7] = "Docker (software)"
    aliases = [[] for _ in labels]
    aliases[7] = ["docker"]
    aliases[12] = ["bake bread"]
    literal = ConceptHead(base.matrix, base.keys, labels, name="literal", version="l1", aliases=aliases,
                          manifest={"assignment": {"literal_boost": 0.25}})
    plain = ConceptHead(base.matrix, base.keys, labels, name="plain", version="p1", aliases=aliases)
    assert plain.phrases is None and literal.phrases.mentions("We BAKE bread and ship Docker images.") == {7, 12}
    runtimes.encoder.add_space(literal)
    runtimes.encoder.add_space(plain)
    text = "We bake bread and ship Docker images."
    with ServerThread(cfg, runtimes) as st, grpc.insecure_channel(st.address) as ch:
        stub = pbg.InferenceStub(ch)

        def encode(space, k):
            opts = pb.EncodeOptions(top_k_concepts=k, concept_space=space)
            return stub.Encode(pb.EncodeRequest(texts=[text], options=opts), timeout=10).embeddings[0]

        without = {c.key: c.weight for c in encode("plain", 40).concepts}
        got = encode("literal", 3)
        dense = np.array(list(got.dense), dtype=np.float32)
        own = np.maximum(base.matrix @ dense, 0.0)
        expected = {base.keys[j]: float(own[j]) for j in range(40) if own[j] > 0}
        for j in (7, 12):
            expected[base.keys[j]] = float(own[j]) + 0.25
        top3 = sorted(expected.items(), key=lambda kv: -kv[1])[:3]
        assert [(c.key, round(c.weight, 4)) for c in got.concepts] == [(k, round(w, 4)) for k, w in top3]
        assert {base.keys[7], base.keys[12]} <= {c.key for c in encode("literal", 40).concepts}
        assert without == pytest.approx({base.keys[j]: float(own[j]) for j in range(40) if own[j] > 0}, abs=1e-4)


def test_phrase_index_keeps_only_names_that_are_evidence():
    from inference_server.runtime.concept_head import PhraseIndex

    idx = PhraseIndex([["Python (computer programming)", "Python"], ["use"], ["R"], ["data"],
                       ["project management"], ["project management"], ["project management"], ["project management"],
                       ["C++"], ["a b c d e f g"]])
    assert idx.mentions("We code in python and C++.") == {0, 8}
    assert idx.mentions("use R for data") == set(), "short and function-word names are not evidence"
    assert idx.mentions("strong project management skills") == set(), "a name of four concepts says nothing"
    assert idx.mentions("python (computer programming)") == {0}
    assert idx.mentions("a b c d e f g") == set(), "longer than six words"
