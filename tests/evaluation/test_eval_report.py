"""Report writers, and `evaluate_dataset` end to end against the fake cluster."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from eval_fakes import FakeClient
from test_eval_datasets import write_dataset

from integration.evaluation import report as report_mod
from integration.evaluation.cli import default_index, evaluate_dataset
from integration.evaluation.runner import ModeRun
from ir.metrics import Evaluation


def assert_valid_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        payload = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc, kind
        chunks.append(kind)
        offset += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100


def _evaluation(values):
    per_query = {m: dict(values) for m in ("ndcg@10", "recall@100", "mrr@10")}
    mean = {m: sum(values.values()) / len(values) for m in per_query}
    return Evaluation(mean=mean, per_query=per_query, queries=len(values))


def _report():
    runs = {
        "bm25": ModeRun("bm25", rankings={"q1": ["a"], "q2": ["b"]}, latencies_ms=[5.0, 7.0], seconds=0.1),
        "hybrid": ModeRun("hybrid", rankings={"q1": ["a"], "q2": ["b"]}, latencies_ms=[9.0, 11.0], seconds=0.2,
                          notes=["rerank degraded on 1 of 2 queries (e.g. timeout)"]),
        "dense": ModeRun("dense", unavailable="search pipeline 'sesa-search' does not exist on the cluster"),
    }
    evaluations = {"bm25": _evaluation({"q1": 0.5, "q2": 0.25}), "hybrid": _evaluation({"q1": 0.75, "q2": 0.5})}
    return report_mod.make_report(
        dataset={"name": "tiny", "documents": 4, "judged_queries": 2}, split="test", index="sesa-tiny",
        cluster_url="http://fake:9200", modes=["bm25", "dense", "hybrid"], runs=runs, evaluations=evaluations,
        opensearch={"version": "3.5.0"}, plugin={"name": "opensearch-sesa", "version": "0.1.0"},
        server={"address": "x:1", "models_summary": ["encoder: m@1"], "device": "cpu"},
        hardware={"cpu_model": "cpu", "cpu_cores_logical": 2, "gpus": []}, date="2025-01-01T00:00:00+00:00",
        settings={"provenance": {"bm25 query": {"value": "best_fields", "source": "BEIR"}}},
        permutations=500, seed=1,
    )


def test_report_has_every_key_and_unavailable_modes(tmp_path):
    report = _report()
    assert set(report_mod.REQUIRED_KEYS) <= set(report)
    assert report["modes"]["dense"] == {
        "status": "unavailable: search pipeline 'sesa-search' does not exist on the cluster", "available": False}
    assert set(report["metrics"]) == {"bm25", "hybrid"}
    assert report["per_query"]["hybrid"]["ndcg@10"] == {"q1": 0.75, "q2": 0.5}
    comp = report["significance"]["comparisons"]["hybrid"]
    assert report["significance"]["baseline"] == "bm25"
    assert comp["delta"] == pytest.approx(0.25) and 0 < comp["p_value"] <= 1


def test_writers_produce_json_markdown_and_png(tmp_path):
    paths = report_mod.write_all(_report(), tmp_path / "out")
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "chart.png"}
    data = json.loads(paths["json"].read_text())
    assert set(report_mod.REQUIRED_KEYS) <= set(data)
    md = paths["markdown"].read_text()
    assert "| mode | nDCG@10 | Recall@100 | MRR@10 |" in md
    assert "| bm25 | 0.375 | 0.375 | 0.375 | (baseline) |" in md
    assert "| hybrid | 0.625 |" in md and "+0.250" in md
    assert "unavailable: search pipeline 'sesa-search' does not exist" in md
    assert "**bm25 query**: best_fields — BEIR" in md
    assert "- OpenSearch: " in md and "- SESA plugin: " in md
    assert_valid_png(paths["chart"])

    # a run that asks no cluster (sesa eval-concepts: Encode only) says nothing of one, rather than "?"
    server_only = _report() | {"plugin": {}, "opensearch": {}}
    md = report_mod.write_all(server_only, tmp_path / "server-only")["markdown"].read_text()
    assert "OpenSearch" not in md and "SESA plugin" not in md and "- Inference server" in md


def test_chart_with_no_available_mode_is_still_a_png(tmp_path):
    report = _report()
    for entry in report["modes"].values():
        entry["available"] = False
    assert_valid_png(report_mod.write_chart(report, tmp_path / "c.png"))


def test_evaluate_dataset_ingests_runs_and_writes_reports(tmp_path):
    ds_path = write_dataset(tmp_path / "tiny")
    rankings = {"alpha": ["d1", "d2"], "title": ["d4", "3"]}
    client = FakeClient(searcher=lambda index, body, params:
                        {"took": 1, "hits": {"hits": [{"_id": i} for i in
                                                      rankings[body["query"]["multi_match"]["query"]]]}})
    logs = []
    outcome = evaluate_dataset(client, ds_path, modes=["bm25", "hybrid"], out_dir=tmp_path / "out",
                               cluster_url="http://fake", server_address="127.0.0.1:1", progress=False,
                               permutations=200, log=logs.append)
    assert default_index(ds_path) == "sesa-tiny"
    assert outcome.ingest is not None and outcome.ingest.indexed == 4
    report = outcome.report
    assert report["index"] == "sesa-tiny"
    assert report["modes"]["hybrid"]["status"].startswith("unavailable: search pipeline 'sesa-search'")
    # q1: d1 (grade 2) then d2 (grade 1) -> ideal; q2: 3 (grade 1) at rank 2 -> 1/log2(3)
    assert report["metrics"]["bm25"]["ndcg@10"] == pytest.approx((1 + 1 / 1.5849625007211562) / 2)
    assert report["metrics"]["bm25"]["mrr@10"] == pytest.approx(0.75)
    assert report["dataset"]["judged_queries"] == 2 and report["dataset"]["documents"] == 4
    assert "unavailable" in report["models"]["inference_server"]
    assert "unavailable" in report["plugin"]
    assert report["settings"]["provenance"]["search pipeline"]["value"] == "absent"
    assert all(p.is_file() for p in outcome.paths.values())
    # second run: the index is complete, nothing is ingested
    again = evaluate_dataset(client, ds_path, modes=["bm25"], cluster_url="http://fake",
                             server_address="127.0.0.1:1", progress=False, permutations=10, log=logs.append)
    assert again.ingest is None and again.paths == {}


def test_register_adds_ingest_and_eval_subcommands():
    import argparse

    from integration.evaluation.cli import register

    parser = argparse.ArgumentParser(prog="sesa")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "/data/SciFact"])
    assert (args.modes, args.split, args.index, args.size) == (
        "bm25,bm25+dense,dense,concepts,hybrid,hybrid+rerank", "test", None, 100)
    assert default_index("/data/SciFact") == "sesa-scifact"
    args = parser.parse_args(["ingest", "/data/x", "--index", "bm25-x", "--pipeline", "_none", "--fresh"])
    assert (args.batch_size, args.pipeline, args.fresh) == (200, "_none", True)


def test_every_mode_is_also_compared_with_the_plain_bm25_dense_hybrid():
    from integration.evaluation.report import significance, table_lines
    from ir.metrics import Evaluation

    def ev(scores):
        per = {"ndcg@10": dict(enumerate(scores))}
        return Evaluation(mean={"ndcg@10": sum(scores) / len(scores)}, per_query=per, queries=len(scores),
                          metrics=("ndcg@10",))

    evals = {"bm25": ev([0.1, 0.2, 0.3, 0.4]), "bm25+dense": ev([0.3, 0.3, 0.4, 0.5]),
             "hybrid": ev([0.3, 0.35, 0.4, 0.5])}
    sig = significance(evals, permutations=200)
    assert sig["plain_hybrid"]["baseline"] == "bm25+dense"
    assert round(sig["plain_hybrid"]["comparisons"]["hybrid"]["delta"], 4) == 0.0125
    assert round(sig["comparisons"]["hybrid"]["delta"], 4) == 0.1375
    report = {"significance": sig, "metric_names": ["ndcg@10"], "modes": {
        m: {"available": True, "metrics": {"ndcg@10": e.mean["ndcg@10"]}, "latency_ms": {"p50": 1.0}, "notes": []}
        for m, e in evals.items()}}
    lines = table_lines(report)
    assert "Δ vs bm25+dense" in lines[0]
    assert "| +0.012 |" in next(line for line in lines if line.startswith("| hybrid"))  # 0.0125 rounded half-even
    assert "(plain)" in next(line for line in lines if line.startswith("| bm25+dense"))
