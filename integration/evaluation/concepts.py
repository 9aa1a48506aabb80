"""`sesa eval-concepts`: how well the served concept vectors name what a text is about.

A labelled set in BEIR layout (queries = texts, corpus = the concepts, qrels = the concepts annotated for each
text, e.g. ``../shared/data/esco/postings`` with the TECH and HOUSE job-ad sentences) is sent through the
server's ``Encode``; each text's concepts, strongest first, are its ranking. Reported per concept space (one
"mode" each, so spaces are compared with a paired randomization test): R-Precision@5, @10 (the literature's
|top-k ∩ relevant| / min(k, |relevant|)) and MRR over the returned concepts, in the report format of `sesa eval`
(report.json, report.md, chart.png, settings and their provenance).

Concept keys are matched to the corpus ids by the rule the packs derive keys with (the id's last URI segment,
made feature-name safe, behind the pack's prefix), so any pack built from the same knowledge base is evaluated
on the same judgements.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ir.beir import Dataset
from ir.metrics import CONCEPT_METRICS, Evaluation, evaluate_concepts

from ..cluster.errors import SesaError
from . import environment, report as report_mod

BATCH = 64


def key_matcher(corpus_ids: Iterable[str]) -> Callable[[str], str | None]:
    """served concept key -> corpus id: the key itself, or the key after a ``<prefix>-`` of the pack (keys are
    derived from ids by the packs' own rule, ``concept_key``)."""
    from model_building.concept_packs.vocabulary import VocabularyError, concept_key

    by_bare = {}
    for raw in corpus_ids:
        try:
            by_bare[concept_key(raw)] = raw
        except VocabularyError:
            continue  # an id no pack could serve: never matched

    def match(key: str) -> str | None:
        if key in by_bare:
            return by_bare[key]
        for pos in [m.start() for m in re.finditer("-", key)]:
            hit = by_bare.get(key[pos + 1:])
            if hit is not None:
                return hit
        return None

    return match


def concept_rankings(client, texts: dict[str, str], *, concept_space: str, kind: int, top_k: int,
                     match: Callable[[str], str | None], progress: bool = False) -> tuple[dict[str, list[str]], dict]:
    """{text id: [corpus ids of its concepts, strongest first]} and what the server said (model, misses)."""
    ids = list(texts)
    rankings: dict[str, list[str]] = {}
    unmatched = 0
    model = None
    started = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        response = client.encode([texts[i] for i in chunk], kind=kind, top_k_concepts=top_k, skip_dense=True,
                                 concept_space=concept_space)
        model = f"{response.concept_model.id}@{response.concept_model.version}"
        for qid, emb in zip(chunk, response.embeddings):
            if emb.HasField("error"):
                rankings[qid] = []
                continue
            ranked = []
            for c in emb.concepts:
                hit = match(c.key)
                if hit is None:
                    unmatched += 1
                else:
                    ranked.append(hit)
            rankings[qid] = ranked
        if progress:
            print(f"\r  {concept_space or 'default space'}: {min(start + BATCH, len(ids))}/{len(ids)} texts",
                  end="", flush=True)
    if progress:
        print()
    return rankings, {"concept_model": model, "unmatched_concepts": unmatched,
                      "seconds": round(time.perf_counter() - started, 2)}


def evaluate_spaces(dataset_dir: str | Path, split: str, server: str, spaces: Sequence[str], *, kind: str = "passage",
                    top_k: int = 256, progress: bool = True, command: str | None = None) -> dict[str, Any]:
    """The report (see the module docstring) of each space in ``spaces`` ("" = the server's default) on ``split``."""
    from inference_server.contract import inference_pb2 as pb

    from ..inference import InferenceClient

    ds = Dataset(dataset_dir)
    if split not in ds.splits():
        raise SesaError(f"{ds.path} has no split {split!r}; it has: {', '.join(ds.splits())}")
    texts, qrels = ds.judged_queries(split)
    match = key_matcher(ds.iter_ids())
    text_kind = pb.TEXT_KIND_QUERY if kind == "query" else pb.TEXT_KIND_PASSAGE
    evaluations: dict[str, Evaluation] = {}
    modes: dict[str, Any] = {}
    with InferenceClient(server, timeout_s=120) as client:
        served = [s.name for s in client.info().concept_spaces] or [client.info().concept_space.name]
        max_k = top_k
        for space in spaces or [""]:
            name = space or served[0]
            if name not in served:
                raise SesaError(f"the server at {server} does not serve concept space {name!r}; it serves: "
                                f"{', '.join(served)} (add it with models.extra_concept_spaces)")
            rankings, facts = concept_rankings(client, texts, concept_space=space, kind=text_kind, top_k=max_k,
                                               match=match, progress=progress)
            ev = evaluate_concepts(qrels, rankings)
            evaluations[name] = ev
            modes[name] = {"status": "ok", "available": True, "queries": ev.queries, "metrics": ev.mean,
                           "seconds": facts["seconds"], "notes": [f"model {facts['concept_model']}"]
                           + ([f"{facts['unmatched_concepts']} returned concepts not in the corpus"]
                              if facts["unmatched_concepts"] else [])}
    server_info = environment.inference_server(server)
    settings = {"kind": kind, "top_k_concepts": top_k, "spaces": list(spaces) or ["(server default)"],
                "provenance": {
                    "top_k_concepts": {"value": top_k, "source": "--top-k (the server clamps to concepts.max_top_k); "
                                                                 "MRR counts ranks within these"},
                    "kind": {"value": kind, "source": "--kind: texts are encoded as documents (passage) or queries"}}}
    return {
        "schema_version": report_mod.SCHEMA_VERSION,
        "dataset": {"name": ds.name, "path": str(ds.path), "documents": ds.document_count,
                    "judged_queries": len(qrels)},
        "split": split, "index": "Encode (no index)", "modes": modes,
        "metrics": {m: e.mean for m, e in evaluations.items()}, "metric_names": list(CONCEPT_METRICS),
        "per_query": {m: e.per_query for m, e in evaluations.items()},
        "significance": report_mod.significance(evaluations, baseline=next(iter(evaluations)), metric="rp@5"),
        "models": {"inference_server": server_info}, "plugin": {}, "opensearch": {},
        "hardware": environment.hardware(), "date": environment.now_utc(), "settings": settings,
        "command": command, "revision": environment.git_revision(),
    }


def _cmd_eval_concepts(args: argparse.Namespace) -> int:
    import sys

    server = args.server or environment.default_server_address()
    spaces = [s.strip() for s in args.spaces.split(",")] if args.spaces else []
    result = evaluate_spaces(args.dataset, args.split, server, spaces, kind=args.kind, top_k=args.top_k,
                             progress=not args.no_progress, command=" ".join(["sesa", *sys.argv[1:]]))
    print("\n".join(report_mod.table_lines(result)))
    if args.out:
        written = report_mod.write_all(result, args.out)
        print("\nreports: " + ", ".join(str(p) for p in written.values()))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-concepts", help="R-Precision@5/@10 and MRR of the served concept vectors on a labelled set (BEIR "
                              "layout: queries = texts, corpus = concepts, qrels = annotated concepts)")
    p.add_argument("dataset", help="e.g. ../shared/data/esco/postings")
    p.add_argument("--split", required=True, help="qrels file name without .tsv, e.g. test_tech")
    p.add_argument("--spaces", help="comma-separated concept space names the server serves (default: its default "
                                    "space); each is one row of the report, compared with the first")
    p.add_argument("--kind", choices=("passage", "query"), default="passage",
                   help="encode the texts as documents (default: how ingest assigns concepts) or as queries")
    p.add_argument("--top-k", type=int, default=256, help="concepts asked per text (MRR counts ranks within them)")
    p.add_argument("--server", metavar="HOST:PORT")
    p.add_argument("--out", type=Path, help="write report.json, report.md and chart.png here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_eval_concepts)
