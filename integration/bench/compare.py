"""`sesa bench server --compare`: our encoder runtime against sentence-transformers, in one run.

What it measures, on the same texts and the same CPU threads, each point the best of ``rounds``
interleaved rounds (noise on a shared machine only slows a run down):

* **sentence-transformers** ``encode`` (PyTorch eager, fp32, batch 32; its own length sorting), the
  reference every anchor system starts from;
* **our runtime at each precision**, end to end as the server runs it: tokenize, model, mean pooling,
  L2 norm and the concept head, in token-budget batches over length buckets (``EncoderRuntime.embed``
  with the server's batching limits);
* on a **mixed stream** (queries and passages interleaved, the way ingest and search traffic share a
  server): length bucketing vs padding every batch of 32 to its longest text;
* the **fp32 compute limit** of this machine for the model: FLOPs per passage from the model's shape
  (the dense layers and attention at the passage's length) over a measured single-precision GEMM peak.

* the **reranker at each precision**, when the config names one (``models.reranker``): (query, passage)
  pairs scored per second, as the server plans and batches them, and how far int8 moves the scores from
  fp32 (Spearman correlation per query, top-1 agreement).

Ratios are the result (``ours_over_sentence_transformers``, ``bucketing_over_padding``,
``rerank_int8_over_fp32``); absolute figures count only from a GPU run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference_server import paths
from inference_server.config import ServerConfig


def load_texts(dataset_dir: str | Path, passages: int, queries: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """SciFact-style BEIR folder -> (passages "title. text", queries), a fixed-seed sample of each."""
    d = Path(dataset_dir)
    rng = np.random.default_rng(seed)

    def read(name: str) -> list[dict]:
        import gzip

        path = d / name if (d / name).is_file() else d / f"{name}.gz"
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    corpus = read("corpus.jsonl")
    docs = [f"{c.get('title') or ''}. {c.get('text') or ''}".strip(". ") for c in corpus]
    docs = [t for t in docs if t.strip()]
    qs = [q["text"] for q in read("queries.jsonl") if q.get("text", "").strip()]
    def pick(xs: list[str], n: int) -> list[str]:
        return [xs[i] for i in rng.choice(len(xs), size=min(n, len(xs)), replace=False)]

    return pick(docs, passages), pick(qs, queries)


def gemm_peak_gflops(threads: int, n: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 matrix-multiply throughput (numpy/BLAS on ``threads`` threads), best of ``repeats``."""
    from contextlib import nullcontext

    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn / sentence-transformers
        limit = nullcontext()
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    with limit:
        a @ b  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def encoder_flops(config_json: Path, tokens: int) -> float:
    """Forward FLOPs of a BERT-style encoder for one sequence of ``tokens`` (multiply-add = 2 FLOPs):
    Q/K/V/output projections and the feed-forward per token, plus the attention scores and mixing."""
    cfg = json.loads(Path(config_json).read_text(encoding="utf-8"))
    h, layers, ff = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    per_token = 2 * (4 * h * h + 2 * h * ff)
    attention = 2 * 2 * tokens * tokens * h
    return float(layers * (tokens * per_token + attention))


def _rate(fn, n_texts: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n_texts / (time.perf_counter() - t0)


def run_compare(dataset_dir: str | Path, *, passages: int = 256, queries: int = 256, rounds: int = 3,
                precisions: tuple[str, ...] = ("fp32", "int8"), encoder_dir: str | Path | None = None,
                config: ServerConfig | None = None) -> dict[str, Any]:
    from inference_server.runtime.backend import cpu_cores
    from inference_server.runtime.encoder import EncodeItem, length_sorted_passes
    from inference_server.runtime.loader import load_encoder

    base = config or ServerConfig()
    threads = base.runtime.intra_op_threads or cpu_cores()
    model_dir = Path(encoder_dir) if encoder_dir else paths.builtin_encoder_dir()
    docs, qs = load_texts(dataset_dir, passages, queries)
    mixed = [t for pair in zip(qs, docs) for t in pair]
    report: dict[str, Any] = {"dataset": str(dataset_dir), "passages": len(docs), "queries": len(qs),
                              "threads": threads, "rounds": rounds, "encoder": str(model_dir)}

    runtimes = {}
    for precision in precisions:
        cfg = base.model_copy(deep=True)
        cfg.runtime.precision = precision
        if encoder_dir:
            cfg.models.encoder = str(encoder_dir)
        runtimes[precision] = load_encoder(cfg)
    enc0 = runtimes[precisions[0]]
    tokens = [s.num_tokens for s in enc0.tokenize(docs, False)]
    report["passage_tokens_mean"] = round(float(np.mean(tokens)), 1)

    st = None
    try:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        st = SentenceTransformer(str(model_dir), device="cpu")
        st.max_seq_length = enc0.passage_max_tokens
    except ImportError as exc:
        report["sentence_transformers"] = f"not installed ({exc.name}): pip install '.[bench]'"

    budget, max_batch = base.batching.max_batch_tokens, base.batching.max_batch_size

    def run(enc, texts, bucketed: bool):
        """Tokenize + model + pooling + concept head: token-budget passes over length-sorted buckets, as the
        batcher forms them, or batches of 32 in arrival order, each padded to its longest text."""
        def go():
            k = base.concepts.default_top_k if enc.head is not None else 0
            seqs = enc.tokenize(texts, False)
            if bucketed:
                passes = length_sorted_passes([s.num_tokens for s in seqs], budget, max_batch)
            else:
                passes = (range(i, min(i + 32, len(seqs))) for i in range(0, len(seqs), 32))
            for idx in passes:
                enc.compute([EncodeItem(seqs[o], k) for o in idx])
        return go

    points: dict[str, dict[str, float]] = {"passages": {}, "mixed": {}}

    def keep_best(name: str, key: str, rate: float) -> None:
        points[name][key] = max(points[name].get(key, 0.0), rate)

    for name, texts in (("passages", docs), ("mixed", mixed)):
        for _ in range(rounds):  # interleaved: every variant sees the same phases of the machine
            if st is not None:
                keep_best(name, "sentence_transformers_fp32", _rate(
                    lambda t=texts: st.encode(t, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                                              show_progress_bar=False), len(texts)))
            for precision, enc in runtimes.items():
                keep_best(name, f"ours_{precision}", _rate(run(enc, texts, True), len(texts)))
                if name == "mixed":
                    keep_best(name, f"ours_{precision}_padded", _rate(run(enc, texts, False), len(texts)))
    report["texts_per_s"] = {n: {k: round(v, 1) for k, v in p.items()} for n, p in points.items()}

    peak = gemm_peak_gflops(threads)
    flops = float(np.mean([encoder_flops(model_dir / "config.json", t) for t in tokens]))
    report["compute_limit"] = {"gemm_peak_gflops_fp32": round(peak, 1), "gflop_per_passage": round(flops / 1e9, 3),
                               "passages_per_s_at_peak_fp32": round(peak * 1e9 / flops, 1)}
    ratios: dict[str, float] = {}
    p = points["passages"]
    if "sentence_transformers_fp32" in p:
        for precision in runtimes:
            ratios[f"ours_{precision}_over_sentence_transformers"] = round(p[f"ours_{precision}"]
                                                                           / p["sentence_transformers_fp32"], 2)
    for precision in runtimes:
        m = points["mixed"]
        ratios[f"bucketing_over_padding_{precision}"] = round(m[f"ours_{precision}"] / m[f"ours_{precision}_padded"], 2)
        ratios[f"ours_{precision}_over_fp32_compute_limit"] = round(
            p[f"ours_{precision}"] / report["compute_limit"]["passages_per_s_at_peak_fp32"], 2)
    if base.models.reranker:
        report["reranker"] = _rerank_compare(base, precisions, docs, qs, rounds)
        rates = report["reranker"]["pairs_per_s"]
        if "fp32" in rates and "int8" in rates:
            ratios["rerank_int8_over_fp32"] = round(rates["int8"] / rates["fp32"], 2)
    else:
        report["reranker"] = "not configured (models.reranker): no rerank figures"
    report["ratios"] = ratios
    report["markdown"] = to_markdown(report)
    return report


def _rerank_compare(base: ServerConfig, precisions: tuple[str, ...], docs: list[str], qs: list[str],
                    rounds: int, per_query: int = 8) -> dict[str, Any]:
    """Pairs/s of the reranker per precision (plan + token-budget passes + score, as the server runs a Rerank
    call), and the agreement of each precision's scores with the first one's."""
    from inference_server.runtime.encoder import length_sorted_passes
    from inference_server.runtime.loader import load_reranker

    runtimes = {}
    for precision in precisions:
        cfg = base.model_copy(deep=True)
        cfg.runtime.precision = precision
        runtimes[precision] = load_reranker(cfg)
    groups = [(q, [docs[(i * per_query + j) % len(docs)] for j in range(per_query)]) for i, q in enumerate(qs)]
    budget, max_batch = base.batching.max_batch_tokens, base.batching.max_batch_size

    def score_all(rt) -> list[np.ndarray]:
        out = []
        for q, passages in groups:
            plans = rt.plan(q, passages, chunk=False, max_chunks=1)
            seqs = [pl.pairs[0] for pl in plans]
            scores = np.zeros(len(seqs), dtype=np.float32)
            for idx in length_sorted_passes([x.num_tokens for x in seqs], budget, max_batch):
                scores[idx] = rt.compute([seqs[k] for k in idx])
            out.append(scores)
        return out

    n_pairs = sum(len(p) for _, p in groups)
    rates: dict[str, float] = {}
    scores: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):
        for precision, rt in runtimes.items():
            t0 = time.perf_counter()
            scores[precision] = score_all(rt)
            rates[precision] = max(rates.get(precision, 0.0), n_pairs / (time.perf_counter() - t0))
    ref = precisions[0]
    agreement = {}
    for precision in precisions[1:]:
        rho = [_spearman(a, b) for a, b in zip(scores[ref], scores[precision])]
        top1 = [int(np.argmax(a) == np.argmax(b)) for a, b in zip(scores[ref], scores[precision])]
        agreement[f"{precision}_vs_{ref}"] = {"spearman_mean": round(float(np.mean(rho)), 4),
                                              "spearman_min": round(float(np.min(rho)), 4),
                                              "top1_agreement": round(float(np.mean(top1)), 3)}
    return {"model": str(base.models.reranker), "queries": len(groups), "pairs": n_pairs,
            "pairs_per_s": {k: round(v, 1) for k, v in rates.items()}, "agreement": agreement}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0
    return float(np.corrcoef(ra, rb)[0, 1])


def to_markdown(r: dict[str, Any]) -> str:
    title = (f"## Encoder compare ({r['passages']} passages, mean {r['passage_tokens_mean']} tokens; "
             f"{r['queries']} queries; {r['threads']} threads; best of {r['rounds']} interleaved rounds)")
    lines = [title, ""]
    if isinstance(r.get("sentence_transformers"), str):
        lines += [f"sentence-transformers: {r['sentence_transformers']}", ""]
    lines += ["| texts/s | " + " | ".join(r["texts_per_s"]["passages"]) + " |",
              "|---|" + "---|" * len(r["texts_per_s"]["passages"])]
    lines.append("| passages | " + " | ".join(str(v) for v in r["texts_per_s"]["passages"].values()) + " |")
    lines += ["", "| mixed stream texts/s | " + " | ".join(r["texts_per_s"]["mixed"]) + " |",
              "|---|" + "---|" * len(r["texts_per_s"]["mixed"])]
    lines.append("| mixed | " + " | ".join(str(v) for v in r["texts_per_s"]["mixed"].values()) + " |")
    c = r["compute_limit"]
    limit = (f"fp32 compute limit: GEMM peak {c['gemm_peak_gflops_fp32']} GFLOP/s, {c['gflop_per_passage']} "
             f"GFLOP per passage -> {c['passages_per_s_at_peak_fp32']} passages/s")
    lines += ["", limit]
    rr = r.get("reranker")
    if isinstance(rr, dict):
        lines += ["", f"Reranker {rr['model']}: {rr['pairs']} (query, passage) pairs over {rr['queries']} queries", "",
                  "| pairs/s | " + " | ".join(rr["pairs_per_s"]) + " |", "|---|" + "---|" * len(rr["pairs_per_s"]),
                  "| reranker | " + " | ".join(str(v) for v in rr["pairs_per_s"].values()) + " |"]
        for name, a in rr["agreement"].items():
            lines.append(f"\nScores {name}: Spearman mean {a['spearman_mean']} (min {a['spearman_min']}), "
                         f"top-1 agreement {a['top1_agreement']}")
    elif rr:
        lines += ["", f"Reranker: {rr}"]
    lines += ["", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r["ratios"].items()]
    return "\n".join(lines) + "\n"
