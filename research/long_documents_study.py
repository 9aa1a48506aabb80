"""How should a chunked document be scored by the dense branch, and with which windows? (issue 20)

The product scores a chunked document by its best window (the nested k-NN's ``score_mode: max``) with windows
of the passage length (256 tokens) and 32 tokens of overlap. This study asks whether another window size or
overlap, or another way of turning the window cosines into one document score, does better, measured on the mean
of the shared sets (never on one), and what each does to short documents, where the product must not move.

For each dataset and window setting the served encoder encodes every document with ``EncodeOptions.chunking``
(the server cuts the windows, as at ingest) and every judged query; the document scores are then computed exactly
(brute force, no HNSW) with each aggregator in :data:`AGGREGATORS`, the top 100 kept, and fused with the BM25
branch of the cluster (top 100 of ``sesa-<name>`` through the pipeline) by the default rule (z-score, 0.5 / 0.5,
``ir.fusion``). Reported: nDCG@10 of dense alone and of the hybrid, windows per document, and the mean over sets.

Run (the stack up, each dataset ingested into ``sesa-<name>``, e.g. by ``sesa ingest``):
``python -m research.long_documents_study ../shared/data/time ../shared/data/cranfield ../shared/data/adi
--out eval-results/long-documents-study.json`` (TIME, Cranfield and ADI with four window settings: 15 min on 2
cores).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ir import fusion
from ir.beir import Dataset
from ir.metrics import evaluate

TOP = 100
WEIGHTS = {"bm25": 0.5, "dense": 0.5}
DEFAULT_SETTINGS = ((0, 32), (0, 128), (128, 32), (128, 64))  # (window_tokens, overlap_tokens); 0 = the passage window

# Window cosines (in text order) -> one document score.
AGGREGATORS: dict[str, Callable[[np.ndarray], float]] = {
    "first": lambda s: float(s[0]),  # what an unchunked index sees
    "max": lambda s: float(s.max()),  # the product (nested k-NN, score_mode max)
    "top2_mean": lambda s: float(np.sort(s)[-2:].mean()),
    "max_plus_0.1_mean": lambda s: float(s.max() + 0.1 * s.mean()),
    "mean_of_first_and_max": lambda s: float(0.5 * (s[0] + s.max())),
    "logsumexp_t20": lambda s: float(np.log(np.exp(20.0 * (s - s.max())).sum()) / 20.0 + s.max()),
}


def dense_window(windows: Sequence[np.ndarray], ids: Sequence[str], query: np.ndarray,
                 aggregate: Callable[[np.ndarray], float], top: int = TOP) -> list[tuple[str, float]]:
    """The dense branch's window: the ``top`` documents by ``aggregate`` of their window cosines, best first."""
    scores = np.array([aggregate(w @ query) for w in windows])
    order = np.argsort(-scores, kind="stable")[:top]
    return [(ids[i], float(scores[i])) for i in order]


def hybrid_ranking(bm25: Sequence[tuple[str, float]], dense: Sequence[tuple[str, float]]) -> list[str]:
    """The default fusion (z-score, 0.5 / 0.5) of the two windows."""
    return [d.key for d in fusion.combine({"bm25": list(bm25), "dense": list(dense)}, WEIGHTS, "z_score")]


def _document_windows(client, texts: Sequence[str], window_tokens: int, overlap_tokens: int, dim: int,
                      batch: int = 16) -> list[np.ndarray]:
    """Every text's window vectors as the server cuts them (one row for a text of one window; zeros for an empty
    text, which the server refuses)."""
    from inference_server.contract import inference_pb2 as pb

    chunking = pb.Chunking(window_tokens=window_tokens, overlap_tokens=overlap_tokens, max_windows=64)
    out: list[np.ndarray] = []
    for i in range(0, len(texts), batch):
        response = client.encode(list(texts[i:i + batch]), skip_concepts=True, chunking=chunking)
        for e in response.embeddings:
            if len(e.windows):
                out.append(np.array([list(w.dense) for w in e.windows], dtype=np.float32))
            elif len(e.dense):
                out.append(np.array([list(e.dense)], dtype=np.float32))
            else:
                out.append(np.zeros((1, dim), dtype=np.float32))
    return out


def _query_vectors(client, queries: Mapping[str, str], batch: int = 64) -> dict[str, np.ndarray]:
    from inference_server.contract import inference_pb2 as pb

    qids = list(queries)
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(qids), batch):
        part = qids[i:i + batch]
        response = client.encode([queries[q] for q in part], kind=pb.TEXT_KIND_QUERY, skip_concepts=True)
        out.update({q: np.array(e.dense, dtype=np.float32) for q, e in zip(part, response.embeddings)})
    return out


def study_dataset(cluster, encoder, path: str, settings: Sequence[tuple[int, int]]) -> dict:
    from integration.evaluation.tuning import branch_windows

    ds = Dataset(path)
    queries, qrels = ds.judged_queries("test")
    docs = list(ds.iter_corpus())
    ids = [d.id for d in docs]
    texts = [d.joined("\n") for d in docs]
    qv = _query_vectors(encoder, queries)
    dim = len(next(iter(qv.values())))
    bm25 = branch_windows(cluster, f"sesa-{ds.name}", queries, window=TOP, progress=False, branches=("bm25",))["bm25"]
    result = {"dataset": ds.name, "documents": len(docs), "queries": len(queries),
              "bm25": evaluate(qrels, {q: [d for d, _ in w] for q, w in bm25.items()}).mean["ndcg@10"], "runs": []}
    for window_tokens, overlap_tokens in settings:
        windows = _document_windows(encoder, texts, window_tokens, overlap_tokens, dim)
        for name, aggregate in AGGREGATORS.items():
            dense = {q: dense_window(windows, ids, v, aggregate) for q, v in qv.items()}
            hybrid = {q: hybrid_ranking(bm25[q], dense[q]) for q in qv}
            result["runs"].append({
                "window_tokens": window_tokens, "overlap_tokens": overlap_tokens, "aggregator": name,
                "windows_per_document": round(float(np.mean([len(w) for w in windows])), 3),
                "dense": round(evaluate(qrels, {q: [d for d, _ in w] for q, w in dense.items()}).mean["ndcg@10"], 4),
                "hybrid": round(evaluate(qrels, hybrid).mean["ndcg@10"], 4),
            })
            print(f"{ds.name} {window_tokens}:{overlap_tokens} {name}: {result['runs'][-1]}", file=sys.stderr, flush=True)
    return result


def summary(results: Sequence[Mapping]) -> list[dict]:
    """Per (window setting, aggregator): each set's hybrid and the mean over the sets, best mean first."""
    rows: dict[tuple, dict] = {}
    for r in results:
        for run in r["runs"]:
            key = (run["window_tokens"], run["overlap_tokens"], run["aggregator"])
            rows.setdefault(key, {"window_tokens": key[0], "overlap_tokens": key[1], "aggregator": key[2],
                                  "hybrid": {}})["hybrid"][r["dataset"]] = run["hybrid"]
    out = []
    for row in rows.values():
        row["mean_hybrid"] = round(float(np.mean(list(row["hybrid"].values()))), 4)
        out.append(row)
    return sorted(out, key=lambda row: -row["mean_hybrid"])


def to_markdown(results: Sequence[Mapping]) -> str:
    names = [r["dataset"] for r in results]
    lines = ["| window tokens : overlap | aggregator | " + " | ".join(f"{n} hybrid" for n in names) + " | mean |",
             "|---|---|" + "---|" * (len(names) + 1)]
    for row in summary(results):
        cells = " | ".join(f"{row['hybrid'].get(n, float('nan')):.4f}" for n in names)
        lines.append(f"| {row['window_tokens'] or 'passage'}:{row['overlap_tokens']} | {row['aggregator']} | {cells} | "
                     f"{row['mean_hybrid']:.4f} |")
    lines.append("")
    lines.append("BM25: " + ", ".join(f"{r['dataset']} {r['bm25']:.4f}" for r in results))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", nargs="+", help="BEIR folders, each ingested into sesa-<folder name>")
    p.add_argument("--settings", default=",".join(f"{w}:{o}" for w, o in DEFAULT_SETTINGS),
                   help="window_tokens:overlap_tokens, comma-separated (0 window = the passage window)")
    p.add_argument("--server", default="127.0.0.1:50051")
    p.add_argument("--cluster", metavar="URL")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    settings = [tuple(int(x) for x in s.split(":")) for s in args.settings.split(",")]
    from integration.cluster.stack import opensearch_client
    from integration.inference import InferenceClient
    from integration.ingest import resolve_cluster_url

    cluster = opensearch_client(resolve_cluster_url(args.cluster))
    with InferenceClient(args.server, timeout_s=600) as encoder:
        results = [study_dataset(cluster, encoder, d, settings) for d in args.datasets]
    markdown = to_markdown(results)
    print(markdown)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"results": results, "summary": summary(results)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
