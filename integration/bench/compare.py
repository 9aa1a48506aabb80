"""`sesa bench server --compare`: our encoder runtime against sentence-transformers, in one run.

What it measures, on the same texts and the same CPU threads, each point the best of ``rounds``
interleaved rounds (noise on a shared machine only slows a run down):

* **sentence-transformers** ``encode`` (PyTorch eager, fp32, batch 32; its own length sorting), the
  reference every anchor system starts from;
* **our runtime on every CPU path this machine has** (engine and precision: ONNX Runtime fp32 and dynamic
  int8, OpenVINO fp32, and OpenVINO bf16 where the CPU has bf16 units), end to end as the server runs it:
  tokenize, model, mean pooling, L2 norm and the concept head, in token-budget batches over length buckets
  (``EncoderRuntime.compute`` with the server's batching limits); each path's vectors against ONNX Runtime
  fp32 (minimum cosine, top-k concept overlap) and against themselves computed alone (batch independence);
  which path ``precision: auto`` picks here, and why;
* on a **mixed stream** (queries and passages interleaved, the way ingest and search traffic share a
  server): length bucketing vs padding every batch of 32 to its longest text;
* the **compute limits** of this machine for the model: FLOPs per passage from the model's shape (the dense
  layers and attention at the passage's length) over measured GEMM peaks: fp32 (numpy), and bf16 and int8
  (PyTorch's oneDNN kernels) when torch is installed; and the instruction sets found.

* the **reranker on each path**, when the config names one (``models.reranker``): (query, passage)
  pairs scored per second, as the server plans and batches them, and how far each path moves the scores
  from ONNX Runtime fp32 (Spearman correlation per query, top-1 agreement).

Ratios are the result (``ours_<path>_over_sentence_transformers``, ``bucketing_over_padding_<path>``,
``rerank_<path>_over_ort-fp32``); absolute figures count only from a GPU run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from inference_server import paths as paths_module
from inference_server.runtime.backend import cpu_name
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


ENGINE_SHORT = {"onnxruntime": "ort", "openvino": "ov"}


def path_label(engine: str, precision: str) -> str:
    return f"{ENGINE_SHORT.get(engine, engine)}-{precision}"


def cpu_paths(features=None, has_openvino: bool | None = None) -> list[tuple[str, str]]:
    """Every (engine, precision) the CPU path can take on this machine, ONNX Runtime fp32 (the reference) first."""
    from inference_server.runtime import cpu_features
    from inference_server.runtime.backend import openvino_available

    features = features or cpu_features.detect()
    has_openvino = openvino_available() if has_openvino is None else has_openvino
    paths_ = [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    if has_openvino:
        paths_.append(("openvino", "fp32"))
        if features.bf16_units:
            paths_.append(("openvino", "bf16"))
    return paths_


def _config_for(base: ServerConfig, engine: str, precision: str) -> ServerConfig:
    cfg = base.model_copy(deep=True)
    cfg.runtime.engine, cfg.runtime.precision = engine, precision
    return cfg


def _torch_peak_gflops(dtype: str, threads: int, n: int = 1024, repeats: int = 5) -> float | None:
    """bf16 or int8 GEMM throughput through PyTorch (oneDNN: AMX tiles, AVX-512 BF16/VNNI where present)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    if dtype == "int8":
        a = torch.randint(-100, 100, (n, n), dtype=torch.int8, generator=g)
        b = torch.randint(-100, 100, (n, n), dtype=torch.int8, generator=g)
        mm = getattr(torch, "_int_mm", None)
        if mm is None:
            return None
    else:
        a = torch.randn(n, n, generator=g).to(torch.bfloat16)
        b = torch.randn(n, n, generator=g).to(torch.bfloat16)
        mm = torch.matmul
    try:
        mm(a, b)
    except RuntimeError:
        return None
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _quality(ref, other, enc, docs: list[str], k: int) -> dict[str, float]:
    """A path's passage vectors against the reference path's, and against themselves computed alone."""
    from inference_server.runtime.encoder import EncodeItem

    seqs = enc.tokenize(docs, False)
    batched = other.compute([EncodeItem(s, k) for s in seqs])
    cos = [float(np.dot(a.dense, b.dense)) for a, b in zip(ref, batched)]
    alone = [float(np.dot(other.compute([EncodeItem(seqs[i], k)])[0].dense, batched[i].dense))
             for i in range(0, len(seqs), max(1, len(seqs) // 16))]
    out = {"cosine_min": round(min(cos), 5), "cosine_mean": round(float(np.mean(cos)), 5),
           "alone_vs_batched_cosine_min": round(min(alone), 6)}
    if k and ref[0].concepts is not None:
        overlap = [len(set(a.concepts.indices.tolist()) & set(b.concepts.indices.tolist())) / max(1, len(a.concepts.indices))
                   for a, b in zip(ref, batched)]
        out[f"concepts_top{k}_overlap_mean"] = round(float(np.mean(overlap)), 4)
    return out


def run_compare(dataset_dir: str | Path, *, passages: int = 256, queries: int = 256, rounds: int = 3,
                paths: list[tuple[str, str]] | None = None, encoder_dir: str | Path | None = None,
                config: ServerConfig | None = None) -> dict[str, Any]:
    from inference_server.runtime import cpu_features
    from inference_server.runtime.backend import choose_device, cpu_cores
    from inference_server.runtime.encoder import EncodeItem, length_sorted_passes
    from inference_server.runtime.loader import load_encoder

    base = config or ServerConfig()
    threads = base.runtime.intra_op_threads or cpu_cores()
    model_dir = Path(encoder_dir) if encoder_dir else paths_module.builtin_encoder_dir()
    docs, qs = load_texts(dataset_dir, passages, queries)
    mixed = [t for pair in zip(qs, docs) for t in pair]
    features = cpu_features.detect()
    paths_ = paths or cpu_paths(features)
    report: dict[str, Any] = {"dataset": str(dataset_dir), "passages": len(docs), "queries": len(qs),
                              "threads": threads, "rounds": rounds, "encoder": str(model_dir),
                              "cpu": cpu_name(), "cpu_features": features.found,
                              "paths": [path_label(*p) for p in paths_]}
    auto = {role: choose_device("cpu", "auto", role=role, features=features) for role in ("encoder", "reranker")}
    report["auto"] = {role: {"path": path_label(c.engine, c.precision), "why": c.reason} for role, c in auto.items()}

    runtimes = {}
    for engine, precision in paths_:
        cfg = _config_for(base, engine, precision)
        if encoder_dir:
            cfg.models.encoder = str(encoder_dir)
        runtimes[path_label(engine, precision)] = load_encoder(cfg)
    enc0 = next(iter(runtimes.values()))
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
    k = base.concepts.default_top_k if enc0.head is not None else 0

    def run(enc, texts, bucketed: bool):
        """Tokenize + model + pooling + concept head: token-budget passes over length-sorted buckets, as the
        batcher forms them, or batches of 32 in arrival order, each padded to its longest text."""
        def go():
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
            for label, enc in runtimes.items():
                keep_best(name, f"ours_{label}", _rate(run(enc, texts, True), len(texts)))
                if name == "mixed":
                    keep_best(name, f"ours_{label}_padded", _rate(run(enc, texts, False), len(texts)))
    report["texts_per_s"] = {n: {k_: round(v, 1) for k_, v in p.items()} for n, p in points.items()}

    ref_label = next(iter(runtimes))
    ref = enc0.compute([EncodeItem(s, k) for s in enc0.tokenize(docs, False)])
    report["quality_vs_" + ref_label] = {label: _quality(ref, enc, enc0, docs, k) for label, enc in runtimes.items()}

    peak = gemm_peak_gflops(threads)
    flops = float(np.mean([encoder_flops(model_dir / "config.json", t) for t in tokens]))
    limits = {"gemm_peak_gflops_fp32": round(peak, 1), "gflop_per_passage": round(flops / 1e9, 3),
              "passages_per_s_at_peak_fp32": round(peak * 1e9 / flops, 1)}
    for dtype in ("bf16", "int8"):
        other = _torch_peak_gflops(dtype, threads)
        if other is not None:
            limits[f"gemm_peak_gflops_{dtype}"] = round(other, 1)
            limits[f"passages_per_s_at_peak_{dtype}"] = round(other * 1e9 / flops, 1)
    report["compute_limit"] = limits
    ratios: dict[str, float] = {}
    p = points["passages"]
    if "sentence_transformers_fp32" in p:
        for label in runtimes:
            ratios[f"ours_{label}_over_sentence_transformers"] = round(p[f"ours_{label}"]
                                                                       / p["sentence_transformers_fp32"], 2)
    for label in runtimes:
        m = points["mixed"]
        ratios[f"bucketing_over_padding_{label}"] = round(m[f"ours_{label}"] / m[f"ours_{label}_padded"], 2)
        ratios[f"ours_{label}_over_fp32_compute_limit"] = round(
            p[f"ours_{label}"] / report["compute_limit"]["passages_per_s_at_peak_fp32"], 2)
    if base.models.reranker:
        report["reranker"] = _rerank_compare(base, paths_, docs, qs, rounds)
        rates = report["reranker"]["pairs_per_s"]
        first = next(iter(rates))
        for label in list(rates)[1:]:
            ratios[f"rerank_{label}_over_{first}"] = round(rates[label] / rates[first], 2)
    else:
        report["reranker"] = "not configured (models.reranker): no rerank figures"
    report["ratios"] = ratios
    report["markdown"] = to_markdown(report)
    return report


def _rerank_compare(base: ServerConfig, paths_: list[tuple[str, str]], docs: list[str], qs: list[str],
                    rounds: int, per_query: int = 8) -> dict[str, Any]:
    """Pairs/s of the reranker on each path (plan + token-budget passes + score, as the server runs a Rerank
    call), and the agreement of each path's scores with the first one's."""
    from inference_server.runtime.encoder import length_sorted_passes
    from inference_server.runtime.loader import load_reranker

    runtimes = {}
    for engine, precision in paths_:
        rt = load_reranker(_config_for(base, engine, precision))
        label = path_label(rt.meta.engine, rt.meta.precision)
        runtimes.setdefault(label, rt)  # an int8 export is served as int8 whatever is asked: measured once
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
        for label, rt in runtimes.items():
            t0 = time.perf_counter()
            scores[label] = score_all(rt)
            rates[label] = max(rates.get(label, 0.0), n_pairs / (time.perf_counter() - t0))
    labels = list(runtimes)
    ref = labels[0]
    agreement = {}
    for label in labels[1:]:
        rho = [_spearman(a, b) for a, b in zip(scores[ref], scores[label])]
        top1 = [int(np.argmax(a) == np.argmax(b)) for a, b in zip(scores[ref], scores[label])]
        agreement[f"{label}_vs_{ref}"] = {"spearman_mean": round(float(np.mean(rho)), 4),
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
    lines = [title, "", f"CPU: {r['cpu']}; instruction sets: {', '.join(r['cpu_features']) or 'none found'}",
             "", "`precision: auto` here: " + "; ".join(f"{role} {a['path']} ({a['why']})" for role, a in r["auto"].items()),
             ""]
    if isinstance(r.get("sentence_transformers"), str):
        lines += [f"sentence-transformers: {r['sentence_transformers']}", ""]
    lines += ["| texts/s | " + " | ".join(r["texts_per_s"]["passages"]) + " |",
              "|---|" + "---|" * len(r["texts_per_s"]["passages"])]
    lines.append("| passages | " + " | ".join(str(v) for v in r["texts_per_s"]["passages"].values()) + " |")
    lines += ["", "| mixed stream texts/s | " + " | ".join(r["texts_per_s"]["mixed"]) + " |",
              "|---|" + "---|" * len(r["texts_per_s"]["mixed"])]
    lines.append("| mixed | " + " | ".join(str(v) for v in r["texts_per_s"]["mixed"].values()) + " |")
    quality = next((v for k, v in r.items() if k.startswith("quality_vs_")), {})
    if quality:
        ref = next(k for k in r if k.startswith("quality_vs_"))[len("quality_vs_"):]
        cols = list(next(iter(quality.values())))
        lines += ["", f"| vectors vs {ref} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        lines += [f"| {label} | " + " | ".join(str(q.get(c, "")) for c in cols) + " |" for label, q in quality.items()]
    c = r["compute_limit"]
    lines += ["", f"Compute limits: {c['gflop_per_passage']} GFLOP per passage; " + "; ".join(
        f"{dt} GEMM peak {c[f'gemm_peak_gflops_{dt}']} GFLOP/s -> {c[f'passages_per_s_at_peak_{dt}']} passages/s"
        for dt in ("fp32", "bf16", "int8") if f"gemm_peak_gflops_{dt}" in c)]
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
