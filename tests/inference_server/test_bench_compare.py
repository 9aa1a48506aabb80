"""`sesa bench server --compare` on a tiny model and a tiny BEIR folder: every figure is there, the ratios
are computed from them, and the FLOP count and GEMM peak behave."""

from __future__ import annotations

import json

import pytest

from inference_server.runtime import cpu_features
from inference_server.runtime.backend import openvino_available
from integration.bench.compare import cpu_paths, encoder_flops, gemm_peak_gflops, run_compare


def test_flops_grow_with_length_and_gemm_peak_is_positive(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}))
    # all-MiniLM-L6-v2 at 256 tokens: ~5.6 GFLOP (dense layers 2*(4h^2 + 2h*ff) per token, plus attention)
    assert 5.0e9 < encoder_flops(cfg, 256) < 6.5e9
    assert encoder_flops(cfg, 256) > 2 * encoder_flops(cfg, 128) * 0.99
    assert gemm_peak_gflops(1, n=256, repeats=2) > 0


def test_compare_reports_every_variant_and_its_ratios(tmp_path, tiny_models):
    from inference_server.config import ServerConfig

    data = tmp_path / "beir"
    data.mkdir()
    with open(data / "corpus.jsonl", "w") as f:
        for i in range(12):
            f.write(json.dumps({"_id": str(i), "title": f"title {i}", "text": "word " * (5 + 20 * i)}) + "\n")
    with open(data / "queries.jsonl", "w") as f:
        for i in range(12):
            f.write(json.dumps({"_id": f"q{i}", "text": f"query number {i}"}) + "\n")
    cfg = ServerConfig()
    cfg.models.concept_space = None
    cfg.models.cache_dir = str(tiny_models["cache"])
    paths = [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    if openvino_available():
        paths.append(("openvino", "fp32"))
    report = run_compare(data, passages=8, queries=8, rounds=1, paths=paths,
                         encoder_dir=tiny_models["encoder_dir"], config=cfg)
    assert report["paths"][:2] == ["ort-fp32", "ort-int8"] and report["cpu_features"] == cpu_features.detect().found
    assert set(report["auto"]) == {"encoder", "reranker"} and report["auto"]["encoder"]["why"]
    rates = report["texts_per_s"]
    assert rates["passages"]["ours_ort-fp32"] > 0 and rates["passages"]["ours_ort-int8"] > 0
    assert rates["mixed"]["ours_ort-fp32_padded"] > 0
    quality = report["quality_vs_ort-fp32"]
    assert quality["ort-fp32"]["cosine_min"] == pytest.approx(1.0, abs=1e-5)
    assert quality["ort-int8"]["alone_vs_batched_cosine_min"] == pytest.approx(1.0, abs=1e-6)  # one sequence a call
    if "ov-fp32" in quality:
        assert quality["ov-fp32"]["cosine_min"] > 0.9999
    r = report["ratios"]
    assert r["bucketing_over_padding_ort-fp32"] == pytest.approx(
        rates["mixed"]["ours_ort-fp32"] / rates["mixed"]["ours_ort-fp32_padded"], rel=0.05)
    if "sentence_transformers_fp32" in rates["passages"]:
        assert r["ours_ort-int8_over_sentence_transformers"] > 0
    else:
        assert "not installed" in report["sentence_transformers"]
    assert "| ratio | value |" in report["markdown"] and "instruction sets" in report["markdown"]
    assert "not configured" in report["reranker"]

    cfg.models.reranker = str(tiny_models["reranker_dir"])
    report = run_compare(data, passages=8, queries=4, rounds=1, paths=paths[:2],
                         encoder_dir=tiny_models["encoder_dir"], config=cfg)
    rr = report["reranker"]
    assert rr["pairs"] == 4 * 8 and rr["pairs_per_s"]["ort-fp32"] > 0 and rr["pairs_per_s"]["ort-int8"] > 0
    a = rr["agreement"]["ort-int8_vs_ort-fp32"]
    assert -1.0 <= a["spearman_min"] <= a["spearman_mean"] <= 1.0 and 0 <= a["top1_agreement"] <= 1
    assert report["ratios"]["rerank_ort-int8_over_ort-fp32"] == pytest.approx(
        rr["pairs_per_s"]["ort-int8"] / rr["pairs_per_s"]["ort-fp32"], rel=0.05)
    assert "pairs/s" in report["markdown"]


def test_the_paths_follow_the_cpu():
    from inference_server.runtime.cpu_features import CpuFeatures

    zen4 = CpuFeatures(frozenset({"avx512_bf16", "avx512_vnni", "avx2"}), "test")
    haswell = CpuFeatures(frozenset({"avx2"}), "test")
    assert cpu_paths(zen4, has_openvino=True) == [("onnxruntime", "fp32"), ("onnxruntime", "int8"),
                                                  ("openvino", "fp32"), ("openvino", "bf16")]
    assert cpu_paths(haswell, has_openvino=True)[-1] == ("openvino", "fp32")
    assert cpu_paths(zen4, has_openvino=False) == [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
