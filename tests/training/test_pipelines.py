"""End-to-end training pipelines.

Fast: the concept-head recipe on a synthetic BEIR folder with a fake encoder (no ONNX, no model).
Slow (``-m slow``): the reranker recipe with a tiny random BERT, and the real ``--tiny`` commands
on SciFact with the real encoder (skipped when the shared data or the models are missing).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch/transformers not installed (extra 'train')")


@needs_torch
def test_concept_training_pipeline_writes_a_servable_artifact(synthetic_beir, synthetic_vocab, fake_encoder, tmp_path):
    from inference_server.runtime.concept_head import ConceptHead
    from inference_server.runtime.domain import DomainBank
    from model_building.training.concept_head_training import ConceptTrainConfig
    from model_building.training.concepts_pipeline import train_concepts

    cfg = ConceptTrainConfig(epochs=2, batch_size=8, n_title=8, n_ict=8, hard_pool=5, dev_fraction=0.25,
                             top_k=8, train_top_k=8, lr=1e-2)
    out = tmp_path / "head"
    m = train_concepts(synthetic_beir, str(synthetic_vocab), out, cfg, encoder=fake_encoder,
                       cache_dir=tmp_path / "cache", show_progress=False)
    assert m["kind"] == "trained" and m["size"] == 25 and m["dimension"] == 32
    assert m["data"]["test_qrels_used_for_training"] is False
    assert m["data"]["dev_queries"] == 5 and m["training"]["best_epoch"] in (0, 1, 2)
    head = ConceptHead.load(out)  # verifies the sha256 of the float16 matrix
    assert np.load(out / "matrix.npy").dtype == np.float16
    assert head.size == 25 and head.manifest["encoder"]["version"] == fake_encoder.meta.version
    hits = head.top_k(fake_encoder.embed(["does immune affect infection"], query=True), 8)[0]
    assert 0 < len(hits.indices) <= 8 and np.all(np.diff(hits.weights) <= 0)
    row = m["metrics"]["ndcg@10"][f"{synthetic_beir.name}-test"]
    assert 0.0 <= row["concepts_trained"] <= 1.0 and "hybrid3_trained" in row
    assert set(m["fusion"]["weights"]) == {"bm25", "dense", "concepts"}
    assert abs(sum(m["fusion"]["weights"].values()) - 1.0) < 1e-6
    # its domain bank: the run's train queries, the threshold from the 5 dev queries; listed with its checksum
    assert m["domain"]["queries"] == {"train": m["data"]["train_queries"], "dev": 5} and m["domain"]["k"] == 10
    assert m["files"]["domain.json"]["bytes"] == (out / "domain.json").stat().st_size
    assert 0 < m["domain"]["threshold_fp32"] <= 1
    head = ConceptHead.load(out)
    bank = DomainBank.from_manifest(out, head.manifest, lambda t: fake_encoder.embed(t, query=True))
    assert bank.bank.shape == (m["data"]["train_queries"], 32)
    assert bank.threshold == pytest.approx(m["domain"]["threshold_fp32"], abs=1e-4)  # the fake encoder is fp32


@needs_torch
def test_concept_report_explains_with_shared_concepts(synthetic_beir, synthetic_vocab, fake_encoder, tmp_path):
    from model_building.training.concept_head_training import ConceptTrainConfig
    from model_building.training.concepts_pipeline import train_concepts
    from model_building.training.report import concept_report

    cfg = ConceptTrainConfig(epochs=1, batch_size=8, n_title=4, n_ict=4, hard_pool=4, dev_fraction=0.0, top_k=8)
    train_concepts(synthetic_beir, str(synthetic_vocab), tmp_path / "h", cfg, encoder=fake_encoder,
                   cache_dir=tmp_path / "c", show_progress=False)
    rep = concept_report(tmp_path / "h", synthetic_beir, encoder=fake_encoder, cache_dir=tmp_path / "c",
                         n_examples=3, n_docs=4)
    assert len(rep["examples"]) == 3 and len(rep["documents"]) == 4
    for ex in rep["examples"]:
        contrib = [c["contribution"] for c in ex["explanation"]["concepts"]]
        assert contrib == sorted(contrib, reverse=True)
        assert sum(contrib) <= ex["explanation"]["score"] + 1e-3
    assert "| concept | key |" in rep["markdown"]
    lists = [[lab for lab, _ in d["labels"]] for d in rep["documents"]]
    top = rep["hubs"][0]
    assert top["lists"] == max(sum(lab in ls for ls in lists) for ls0 in lists for lab in ls0)
    assert f"{top['label']} ({top['lists']} of 4 lists)" in rep["markdown"]


def test_hub_concepts_count_lists_not_mentions():
    from model_building.training.explain import hub_concepts

    lists = [[("a", 0.9), ("b", 0.5)], [("a", 0.8), ("c", 0.4)], [("b", 0.7), ("a", 0.1)], [("d", 1.0)]]
    assert hub_concepts(lists) == [("a", 3), ("b", 2), ("c", 1)]
    assert hub_concepts([[("x", 1.0), ("x", 0.5)]]) == [("x", 1)], "a label twice in one list counts once"


def test_cli_registers_train_commands():
    import argparse

    from model_building.training.cli import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    a = p.parse_args(["train", "concepts", "--dataset", "D", "--tiny", "--eval", "E1", "--eval", "E2"])
    assert a.tiny and a.eval == ["E1", "E2"] and a.vocab == "esco-skills"
    a = p.parse_args(["train", "reranker", "--dataset", "D", "--time-budget", "30"])
    assert a.time_budget == 30.0
    a = p.parse_args(["train", "domain", "--model", "R", "--dataset", "D"])
    assert (a.k, a.percentile) == (10, 5.0)
    with pytest.raises(SystemExit):
        p.parse_args(["train", "domain", "--model", "R", "--dataset", "D", "--k", "0"])


def test_cli_domain_refuses_a_dir_that_is_not_a_trained_model(tmp_path, capsys):
    from model_building.training.cli import main

    assert main(["train", "domain", "--model", str(tmp_path), "--dataset", str(tmp_path), "--quiet"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "zero-shot"}))
    assert main(["train", "domain", "--model", str(tmp_path), "--dataset", str(tmp_path), "--quiet"]) == 2
    assert "not a trained reranker or concept head" in capsys.readouterr().err


def test_cli_reports_a_bad_dataset_in_one_line(tmp_path, capsys):
    from model_building.training.cli import main

    assert main(["train", "concepts", "--dataset", str(tmp_path), "--tiny", "--quiet"]) == 2
    assert "not a BEIR dataset folder" in capsys.readouterr().err  # the one BEIR parser (ir.beir) says why


@pytest.mark.slow
@needs_torch
def test_reranker_pipeline_with_a_tiny_random_bert(synthetic_beir, fake_encoder, tmp_path):
    from model_building.training.reranker import RerankerTrainConfig, load_runtime, rerank_scores
    from model_building.training.reranker_pipeline import remeasure_reranker, train_reranker
    from tests.support.inference import make_tiny_bert

    base = make_tiny_bert(tmp_path / "bert", classification=False)
    cfg = RerankerTrainConfig.tiny()
    cfg.dev_fraction = 0.25
    cfg.dev_depth = 5
    out = tmp_path / "rr"
    m = train_reranker(synthetic_beir, out, cfg, base_dir=base, encoder=fake_encoder, cache_dir=tmp_path / "c",
                       show_progress=False)
    assert m["role"] == "reranker" and m["precision"] == "int8" and m["recipe"]["training"]["steps"] == 4
    assert (out / "model.onnx").stat().st_size < 25 * 1024 * 1024 and (out / "tokenizer.json").is_file()
    row = m["metrics"]["ndcg@10"][f"{synthetic_beir.name}-test"]
    assert 0 <= row["hybrid_before"] <= 1 and 0 <= row["reranked"] <= 1
    assert m["metrics"]["ndcg@10"]["dev"]["alpha_chosen"] in [a / 10 for a in range(11)]
    # the domain bank: the run's train queries, the threshold from its dev queries; evaluation reports the gate
    assert m["domain"]["queries"] == {"train": m["data"]["train_queries"], "dev": m["data"]["dev_queries"]}
    train, dev = json.loads((out / "domain.json").read_text()).values()
    assert len(train) == m["data"]["train_queries"] and len(dev) == m["data"]["dev_queries"]
    assert m["files"]["domain.json"]["bytes"] == (out / "domain.json").stat().st_size
    alpha = m["metrics"]["ndcg@10"]["dev"]["alpha_chosen"]
    assert 0 <= row["in_domain_share"] <= 1 and 0 <= row[f"domain_gated_alpha{alpha}"] <= 1
    rt = load_runtime(out, 96)
    s = rerank_scores(rt, "immune response", ["The immune study.", "Heart pressure."])
    assert s.shape == (2,) and np.all(np.isfinite(s))

    # re-measurement: the same dev queries as training, the weight re-chosen at the served depth
    stale = json.loads((out / "manifest.json").read_text())
    stale["recommended_rerank_weight"] = 0.05
    stale["metrics"] = {"ndcg@10": {}}
    (out / "manifest.json").write_text(json.dumps(stale))
    again = remeasure_reranker(out, synthetic_beir, depth=5, encoder=fake_encoder, cache_dir=tmp_path / "c",
                               show_progress=False)
    fresh = json.loads((out / "manifest.json").read_text())
    assert again["dev"]["queries"] == m["metrics"]["ndcg@10"]["dev"]["queries"] and again["dev"]["depth"] == 5
    assert fresh["recommended_rerank_weight"] == again["dev"]["alpha_chosen"] == m["recommended_rerank_weight"]
    by_alpha = {float(a): v for a, v in fresh["metrics"]["ndcg@10"]["dev"]["interpolation_by_alpha"].items()}
    assert by_alpha == m["metrics"]["ndcg@10"]["dev"]["interpolation_by_alpha"]
    assert f"{synthetic_beir.name}-test" in fresh["metrics"]["ndcg@10"] and fresh["onnx_sha256"] == m["onnx_sha256"]


def test_training_cycles_continue_the_previous_cycle_with_the_next_seed(synthetic_beir, tmp_path, monkeypatch):
    """Cycle k starts from cycle k-1's output dir, trains with seed + k and draws its own negatives."""
    from model_building.training import reranker_pipeline as rp
    from model_building.training.data import load_beir
    from model_building.training.reranker import RerankerTrainConfig

    ds = load_beir(synthetic_beir)
    train_q = sorted(ds.split("train"))
    pools = {q: np.arange(len(ds.doc_ids)) for q in train_q}
    calls = []

    def fake_train(base_dir, epochs, doc_texts, cfg, out_dir, tokenizer_dir=None):
        calls.append({"base": base_dir, "seed": cfg.seed, "out": out_dir,
                      "groups": [(g.qid, tuple(g.docs)) for g in epochs(0)]})
        return {"steps": 4, "groups": 8, "pairs": 32, "seconds": 1.5}

    monkeypatch.setattr(rp, "train_cross_encoder", fake_train)
    cfg = RerankerTrainConfig.tiny()
    cfg.cycles, cfg.seed = 3, 21
    last, stats = rp.train_cycles(tmp_path / "base", ds, train_q, pools, [], cfg, tmp_path / "hf")
    assert [c["seed"] for c in calls] == [21, 22, 23]
    assert calls[0]["base"] == tmp_path / "base"
    assert calls[1]["base"] == calls[0]["out"] and calls[2]["base"] == calls[1]["out"] == last.parent / "cycle-2"
    assert last.name == "cycle-3" and calls[0]["groups"] != calls[1]["groups"]
    assert stats["steps"] == 12 and stats["seconds"] == 4.5 and [c["seed"] for c in stats["cycles"]] == [21, 22, 23]

    calls.clear()
    cfg.cycles = 1
    last, stats = rp.train_cycles(tmp_path / "base", ds, train_q, pools, [], cfg, tmp_path / "hf1")
    assert len(calls) == 1 and last == calls[0]["out"] and "cycles" not in stats and stats["steps"] == 4


def _train_tiny(what: str, tmp_path, shared_data) -> tuple[Path, dict]:
    """``sesa-server train <what> --tiny`` on SciFact; the model dir and its manifest."""
    from model_building.training.cli import main

    out = tmp_path / f"tiny-{what}"
    assert main(["train", what, "--dataset", str(shared_data / "scifact"), "--tiny", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    return out, json.loads((out / "manifest.json").read_text())


@pytest.mark.slow
@needs_torch
def test_train_concepts_tiny_on_scifact(tmp_path, shared_data):
    out, m = _train_tiny("concepts", tmp_path, shared_data)
    assert m["size"] == 300 and m["recipe"]["command"].startswith("sesa-server train concepts")
    assert m["metrics"]["ndcg@10"]["scifact-test"]["concepts_trained"] > 0


@pytest.mark.slow
@needs_torch
def test_train_reranker_tiny_on_scifact(tmp_path, shared_data):
    out, m = _train_tiny("reranker", tmp_path, shared_data)
    assert m["precision"] == "int8" and (out / "model.onnx").stat().st_size < 25 * 1024 * 1024
    assert "scifact-test" in m["metrics"]["ndcg@10"]


def test_choose_concept_weight_keeps_bm25_equal_to_dense_and_prefers_the_smaller_weight():
    import numpy as np

    from model_building.training.concepts_pipeline import choose_concept_weight

    docs = ["d1", "d2", "d3"]
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}

    def run(order: list[int], scores: list[float]):
        return np.asarray(order), np.asarray(scores, dtype=np.float32)

    # bm25 and dense rank the irrelevant d3 first; the concept branch finds the relevant document alone
    runs = {"bm25": {"q1": run([2, 0, 1], [2.0, 1.0, 0.0]), "q2": run([2, 1, 0], [2.0, 1.0, 0.0])},
            "dense": {"q1": run([2, 0, 1], [0.9, 0.8, 0.1]), "q2": run([2, 1, 0], [0.9, 0.8, 0.1])},
            "concepts": {"q1": run([0], [1.0]), "q2": run([1], [1.0])}}
    weights, score = choose_concept_weight(runs, qrels, docs)
    assert weights["bm25"] == weights["dense"] == round((1 - weights["concepts"]) / 2, 4)
    assert score == 1.0
    # min-max per run: d3 gets (1-w)/2 * (1 + 1) = 1-w, the relevant document (1-w)/2 * (0.5 + 0.875) + w;
    # it wins for w > 0.238, and the smallest grid weight above that is chosen
    assert weights["concepts"] == 0.25
    # without any signal in the concept branch the plain hybrid (w = 0) is kept
    flat = {**runs, "concepts": {"q1": run([2], [1.0]), "q2": run([2], [1.0])}}
    assert choose_concept_weight(flat, qrels, docs)[0]["concepts"] == 0.0


@pytest.mark.slow
@needs_torch
def test_train_skills_tiny_on_esco(tmp_path, shared_data):
    """`sesa-server train skills --tiny` with the real encoder and package: 300 skills, a servable artifact whose
    manifest keeps the test sets apart from the dev sets that chose the epoch."""
    from inference_server.runtime.concept_head import ConceptHead
    from model_building.training.cli import main

    if not (shared_data / "esco" / "skills.jsonl").is_file():
        pytest.fail(f"shared data {shared_data} lacks esco/skills.jsonl")
    out = tmp_path / "tiny-skills"
    assert main(["train", "skills", "--esco", str(shared_data / "esco"), "--tiny", "--out", str(out), "--quiet",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["size"] == 300 and m["recipe"]["command"].startswith("sesa-server train skills")
    assert "postings-test_tech" in m["data"]["reported_only"] and "postings-test_tech" not in m["data"]["dev"]
    assert m["data"]["occupations_held_out"] == 225
    assert ConceptHead.load(out).size == 300
    best = max(h["dev"] for h in m["history"])
    assert best >= m["history"][0]["dev"], "the kept epoch is never worse on dev than the zero-shot rows"
