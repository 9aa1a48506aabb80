"""Real ONNX models: export + cache, parity with PyTorch, a server with a real reranker."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (pip install '.[train]'): ONNX export and parity need it")
pytest.importorskip("transformers", reason="transformers not installed (pip install '.[train]')")

from inference_server.contract import inference_pb2 as pb  # noqa: E402
from inference_server.contract import inference_pb2_grpc as pbg  # noqa: E402
from inference_server.model_store import ModelResolutionError, derive_precision, resolve_model
from inference_server.runtime import cpu_features
from model_building.export import export_hf_dir


def test_export_manifest_and_cache_hit(tiny_models):
    enc = tiny_models["encoder"]
    man = enc.manifest
    for field in ("role", "base_model", "version", "source", "source_sha256", "onnx_sha256", "opset", "licence",
                  "outputs", "dimension", "torch_version"):
        assert field in man, field
    assert man["opset"] == 17 and man["licence"] == "apache-2.0" and man["dimension"] == 32
    assert man["outputs"] == ["last_hidden_state", "sentence_embedding"]
    mtime = enc.onnx_path.stat().st_mtime_ns
    t0 = time.perf_counter()
    again = export_hf_dir(tiny_models["encoder_dir"], "encoder", tiny_models["cache"])
    assert time.perf_counter() - t0 < 1.0
    assert again.onnx_path == enc.onnx_path and again.onnx_path.stat().st_mtime_ns == mtime


def test_parity_with_pytorch(tiny_models):
    from model_building.parity import parity_report

    for role in ("encoder", "reranker"):
        rep = parity_report(tiny_models[role], source_dir=tiny_models[f"{role}_dir"])
        assert rep["max_abs_diff"] < 1e-4, rep


def test_resolve_model_specs(tiny_models, tmp_path):
    enc = tiny_models["encoder"]
    # an export dir, an .onnx file with its tokenizer next to it, an HF dir (cached export)
    assert resolve_model(str(enc.onnx_path.parent), "encoder").onnx_path == enc.onnx_path
    assert resolve_model(str(enc.onnx_path), "encoder").tokenizer_path.name == "tokenizer.json"
    hf = resolve_model(str(tiny_models["encoder_dir"]), "encoder", cache_dir=tiny_models["cache"])
    assert hf.onnx_path == enc.onnx_path
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(enc.onnx_path.read_bytes())
    with pytest.raises(ModelResolutionError, match="no tokenizer.json next to it"):
        resolve_model(str(lonely), "encoder")
    with pytest.raises(ModelResolutionError, match="not found"):
        resolve_model(str(tmp_path / "nope"), "reranker")
    with pytest.raises(ModelResolutionError, match="not exported"):
        resolve_model(str(tiny_models["reranker_dir"]), "reranker", cache_dir=tmp_path / "empty", auto_export=False)


def test_int8_variant_is_derived_once(tiny_models):
    p = derive_precision(tiny_models["encoder"], "int8")
    assert p.name == "model.int8.onnx" and p.is_file()
    mtime = p.stat().st_mtime_ns
    assert derive_precision(tiny_models["encoder"], "int8").stat().st_mtime_ns == mtime


def test_int8_results_depend_on_the_text_alone(tiny_models):
    """Dynamic int8 takes one activation scale per call: the backend runs each sequence unpadded on its own,
    so a text gets the same vector (bit for bit) whatever it is batched with; fp32 batches as usual."""
    from inference_server.runtime.backend import DeviceChoice, OrtBackend
    from inference_server.tokenization import TextTokenizer, pad_batch

    tok = TextTokenizer(tiny_models["encoder"].tokenizer_path, tiny_models["encoder"].max_sequence_length)
    texts = ["vaccines", "a much longer text about vaccines and the immune response of older adults", "x y"]
    seqs = tok.encode(texts, 64)
    choice = DeviceChoice("cpu", "cpu", ["CPUExecutionProvider"], "int8")
    int8 = OrtBackend(str(derive_precision(tiny_models["encoder"], "int8")), choice, threads=1)
    assert int8.per_sequence
    together = int8.encode(pad_batch(seqs, tok.pad_id))
    for i, s in enumerate(seqs):
        alone = int8.encode(pad_batch([s], tok.pad_id))
        assert np.array_equal(alone[0], together[i]), f"text {i} changed with its batch"
    fp32 = OrtBackend(str(tiny_models["encoder"].onnx_path), DeviceChoice("cpu", "cpu", ["CPUExecutionProvider"], "fp32"),
                      threads=1)
    assert not fp32.per_sequence
    ref = fp32.encode(pad_batch(seqs, tok.pad_id))
    cos = (ref * together).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(together, axis=1)
    assert cos.min() > 0.9, cos


def test_openvino_serves_the_same_models_and_bf16_keeps_a_text_independent_of_its_batch(tiny_models, tmp_path):
    """OpenVINO reads the same ONNX files: fp32 matches ONNX Runtime; bf16 stays close to fp32 and each row is
    computed on its own, so batching and padding leave a text's vector as it is (stored vector = Encode)."""
    pytest.importorskip("openvino", reason="OpenVINO not installed (a default dependency; pip install openvino)")
    from inference_server.runtime.backend import DeviceChoice, OpenVinoBackend, OrtBackend, make_backend
    from inference_server.tokenization import TextTokenizer, pad_batch

    tok = TextTokenizer(tiny_models["encoder"].tokenizer_path, tiny_models["encoder"].max_sequence_length)
    texts = ["vaccines", "a much longer text about vaccines and the immune response of older adults", "x y"]
    seqs = tok.encode(texts, 64)
    batch = pad_batch(seqs, tok.pad_id)
    ort_choice = DeviceChoice("cpu", "cpu", ["CPUExecutionProvider"], "fp32")
    ref = OrtBackend(str(tiny_models["encoder"].onnx_path), ort_choice, threads=1).encode(batch)

    def cos(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    for precision, floor in (("fp32", 0.99999), ("bf16", 0.999)):
        choice = DeviceChoice("cpu", "cpu", ["OpenVINO (CPU)"], precision, "openvino", "test")
        ov = make_backend(str(tiny_models["encoder"].onnx_path), choice, threads=1, cache_dir=str(tmp_path / "ov"))
        assert isinstance(ov, OpenVinoBackend) and ov.precision == precision and not ov.per_sequence
        together = ov.encode(batch)
        assert together.shape == ref.shape and cos(ref, together).min() > floor, (precision, cos(ref, together))
        for i, s in enumerate(seqs):
            alone = ov.encode(pad_batch([s], tok.pad_id))
            assert cos(alone, together[i:i + 1])[0] >= 0.9999, f"{precision}: text {i} changed with its batch"
    rr = tiny_models["reranker"]
    rtok = TextTokenizer(rr.tokenizer_path, rr.max_sequence_length)
    pairs = pad_batch(rtok.encode(texts, 64), rtok.pad_id)
    want = OrtBackend(str(rr.onnx_path), ort_choice, threads=1).score(pairs)
    got = make_backend(str(rr.onnx_path), DeviceChoice("cpu", "cpu", [], "fp32", "openvino"), threads=1).score(pairs)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-4)


def test_a_forced_fallback_is_what_the_encoder_runs_and_its_reason(tiny_models, cfg_factory, tmp_path, monkeypatch):
    """A CPU without VNNI or bf16 units (forced with SESA_CPU_FLAGS) runs the AVX2 path and says so."""
    from inference_server.runtime.loader import load_encoder

    cfg = cfg_factory(**{"models.encoder": str(tiny_models["encoder"].onnx_path.parent), "models.concept_space": None,
                         "models.cache_dir": str(tmp_path), "runtime.intra_op_threads": 1})
    monkeypatch.setenv(cpu_features.OVERRIDE_ENV, "avx2")
    enc = load_encoder(cfg)
    assert (enc.meta.engine, enc.meta.precision) == ("onnxruntime", "int8")
    assert "AVX2 found (avx2)" in enc.meta.reason


@pytest.fixture(scope="module")
def tiny_server(tiny_models, tmp_path_factory, cfg_factory_module):
    from tests.support.inference import ServerThread, build_tiny_concept_space, tiny_server_settings

    out = build_tiny_concept_space(tmp_path_factory.mktemp("vocab"), tiny_models)
    cfg = cfg_factory_module(**tiny_server_settings(tiny_models, out, **{"rerank.max_tokens": 64}))
    with ServerThread(cfg) as st:
        yield st


def test_real_models_over_grpc(tiny_server):
    with grpc.insecure_channel(tiny_server.address) as ch:
        s = pbg.InferenceStub(ch)
        info = s.Info(pb.InfoRequest(), timeout=10)
        assert [m.role for m in info.models] == ["encoder", "reranker"]
        assert info.models[0].dimension == 32 and info.concept_space.size == 5
        want = "CPUExecutionProvider" if info.models[0].engine == "onnxruntime" else "OpenVINO (CPU)"
        assert want in info.providers and info.device.startswith("cpu")
        assert all(m.engine in ("onnxruntime", "openvino") and m.choice_reason for m in info.models)
        assert list(info.cpu_features) == cpu_features.detect().found
        r = s.Encode(pb.EncodeRequest(texts=["vaccines", "a second text"], options=pb.EncodeOptions(top_k_concepts=3)),
                     timeout=10)
        assert len(r.embeddings[0].dense) == 32 and 0 < len(r.embeddings[0].concepts) <= 3
        assert r.embeddings[0].concepts[0].key.startswith("ex-")
        long = " ".join(f"w{i}" for i in range(400))
        rr = s.Rerank(pb.RerankRequest(query="vaccines", passages=["vaccines work", long, ""],
                                       options=pb.RerankOptions(chunk_long_passages=True, max_chunks=4)), timeout=10)
        a, b, c = rr.scores
        assert a.chunks == 1 and not a.truncated and np.isfinite(a.score)
        assert b.chunks == 4 and b.truncated  # 64-token windows cannot hold ~1000 tokens in 4 chunks
        assert c.error.code == "INVALID_ARGUMENT"
        assert rr.model.id and rr.model.version


def test_chunk_scores_are_max_pooled(tiny_server):
    rt = tiny_server.server.runtimes.reranker
    passage = " ".join(f"w{i}" for i in range(80))
    [plan] = rt.plan("vaccines", [passage], chunk=True, max_chunks=8)
    direct = rt.compute(plan.pairs)
    with grpc.insecure_channel(tiny_server.address) as ch:
        rr = pbg.InferenceStub(ch).Rerank(pb.RerankRequest(query="vaccines", passages=[passage],
                                                           options=pb.RerankOptions(chunk_long_passages=True,
                                                                                    max_chunks=8)), timeout=10)
    assert rr.scores[0].chunks == len(plan.pairs) > 1 and not rr.scores[0].truncated
    assert abs(rr.scores[0].score - max(direct)) < 1e-4


@pytest.mark.slow
def test_minilm_parity_and_semantics(cfg_factory):
    """The real built-in encoder: ONNX vs PyTorch, and a sanity check of its semantics."""
    from model_building.export import export_builtin_encoder
    from model_building.parity import parity_report

    m = export_builtin_encoder()
    rep = parity_report(m)
    assert rep["max_abs_diff"] < 1e-4 and rep["min_cosine"] > 0.9999, rep
    from inference_server.runtime.loader import load_encoder

    enc = load_encoder(cfg_factory(), with_concepts=False)
    v = enc.embed(["how do vaccines work", "Vaccines train the immune system", "The cat sat on the mat"])
    assert v[0] @ v[1] > 0.7 and v[0] @ v[2] < 0.3


def test_an_int8_export_is_served_as_int8_whatever_precision_is_asked(tiny_models, tmp_path):
    """The shipped reranker is an int8 export: it is neither re-quantized nor halved, and it runs one unpadded
    pair per call (a pair's score does not depend on its batch), as every int8 model here does."""
    import json
    import shutil

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from inference_server.config import load_config
    from inference_server.runtime.backend import choose_device
    from inference_server.runtime.loader import load_reranker
    from inference_server.tokenization import TextTokenizer

    src = tiny_models["reranker"]
    d = tmp_path / "int8-reranker"
    d.mkdir()
    quantize_dynamic(str(src.onnx_path), str(d / "model.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    for f in src.onnx_path.parent.iterdir():
        if f.name not in ("model.onnx", "manifest.json") and f.is_file() and not f.name.startswith("model."):
            shutil.copy2(f, d / f.name)
    manifest = dict(src.manifest, precision="int8")
    (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    model = resolve_model(str(d), "reranker")
    for wanted in ("fp16", "int8", "fp32"):
        assert derive_precision(model, wanted) == model.onnx_path
    assert not list(d.glob("model.*.onnx")), "nothing derived from an int8 export"
    cfg = load_config(overrides={"models.reranker": str(d), "runtime.device": "cpu"}, environ={})
    rt = load_reranker(cfg, choose_device("cpu", "fp32", 1, role="reranker"))
    assert rt.backend.per_sequence and rt.meta.precision == "int8"
    tok = TextTokenizer(d / "tokenizer.json", 128)
    pairs = tok.encode_pairs(["q", "q"], ["a short one", "a much longer passage about many other things " * 4], 64)
    alone = rt.compute(pairs[:1])[0]
    assert rt.compute(pairs)[0] == alone
