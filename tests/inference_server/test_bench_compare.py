"""`sesa bench server --compare` on a tiny model and a tiny BEIR folder: every figure is there, the ratios
are computed from them, and the FLOP count and GEMM peak behave."""

from __future__ import annotations

import json

import pytest

from integration.bench.compare import encoder_flops, gemm_peak_gflops, run_compare


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
    report = run_compare(data, passages=8, queries=8, rounds=1, precisions=("fp32", "int8"),
                         encoder_dir=tiny_models["encoder_dir"], config=cfg)
    rates = report["texts_per_s"]
    assert rates["passages"]["ours_fp32"] > 0 and rates["passages"]["ours_int8"] > 0
    assert rates["mixed"]["ours_fp32_padded"] > 0
    r = report["ratios"]
    assert r["bucketing_over_padding_fp32"] == pytest.approx(
        rates["mixed"]["ours_fp32"] / rates["mixed"]["ours_fp32_padded"], rel=0.05)
    if "sentence_transformers_fp32" in rates["passages"]:
        assert r["ours_int8_over_sentence_transformers"] > 0
    else:
        assert "not installed" in report["sentence_transformers"]
    assert "| ratio | value |" in report["markdown"]
    assert "not configured" in report["reranker"]

    cfg.models.reranker = str(tiny_models["reranker_dir"])
    report = run_compare(data, passages=8, queries=4, rounds=1, precisions=("fp32", "int8"),
                         encoder_dir=tiny_models["encoder_dir"], config=cfg)
    rr = report["reranker"]
    assert rr["pairs"] == 4 * 8 and rr["pairs_per_s"]["fp32"] > 0 and rr["pairs_per_s"]["int8"] > 0
    a = rr["agreement"]["int8_vs_fp32"]
    assert -1.0 <= a["spearman_min"] <= a["spearman_mean"] <= 1.0 and 0 <= a["top1_agreement"] <= 1
    assert report["ratios"]["rerank_int8_over_fp32"] == pytest.approx(
        rr["pairs_per_s"]["int8"] / rr["pairs_per_s"]["fp32"], rel=0.05)
    assert "pairs/s" in report["markdown"]
