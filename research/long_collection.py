"""A collection of very long documents made from a BEIR collection of short ones, to stress long-document search.

Why: issue 20 is checked on a held-out collection of very long documents (thousands of words) that is not in
``../shared``; the shared TIME articles are ten times shorter. This builds a stand-in from any BEIR folder: every
long document is ``--per-doc`` of the source's documents (title and text) in a seeded random grouping, joined by
blank lines, and a query judges a long document by the best grade of the source documents it holds. The relevant
passage then sits anywhere in a document of several thousand words, as in the real thing: a first-window dense
vector sees it in about one document of ``--per-doc``, a cap on windows per document hides what lies past it, and
BM25 has to find a few matching sentences among unrelated ones. It is a stand-in, not evidence about another domain:
the words are still the source's.

    python -m research.long_collection ../shared/data/scifact /tmp/scifact-long --per-doc 15 --split test

writes ``corpus.jsonl``, ``queries.jsonl`` (the judged queries of ``--split``) and ``qrels/<split>.tsv`` under the
output folder (outside the repository: the shared data is never copied into it).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Sequence

from ir.beir import Dataset


def group_ids(ids: Sequence[str], per_doc: int, seed: int = 0) -> list[list[str]]:
    """The source ids shuffled with ``seed`` and cut into groups of ``per_doc`` (the last one may be shorter)."""
    if per_doc < 1:
        raise ValueError(f"per_doc must be at least 1, got {per_doc}")
    order = list(ids)
    random.Random(seed).shuffle(order)
    return [order[i:i + per_doc] for i in range(0, len(order), per_doc)]


def long_qrels(qrels: dict[str, dict[str, int]], groups: Sequence[Sequence[str]]) -> dict[str, dict[str, int]]:
    """Each query's judgements moved to the long documents: a long document gets the best grade of its parts."""
    home = {source: f"long-{k}" for k, group in enumerate(groups) for source in group}
    out: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        for source, grade in judged.items():
            if source in home and grade > 0:
                doc = home[source]
                out.setdefault(qid, {})[doc] = max(grade, out.get(qid, {}).get(doc, 0))
    return out


def build(source: str | Path, out: str | Path, per_doc: int = 15, split: str = "test", seed: int = 0) -> dict:
    """Writes the long collection (see the module docstring); returns its size."""
    ds = Dataset(source)
    docs = {d.id: d for d in ds.iter_corpus()}
    groups = group_ids(sorted(docs), per_doc, seed)
    queries, qrels = ds.judged_queries(split)
    judged = long_qrels(qrels, groups)
    out = Path(out)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    words = 0
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for k, group in enumerate(groups):
            text = "\n\n".join(docs[i].joined("\n") for i in group)
            words += len(text.split())
            f.write(json.dumps({"_id": f"long-{k}", "title": "", "text": text}) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid in judged:
            f.write(json.dumps({"_id": qid, "text": queries[qid]}) + "\n")
    with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, judged_docs in judged.items():
            for doc, grade in sorted(judged_docs.items()):
                f.write(f"{qid}\t{doc}\t{grade}\n")
    return {"documents": len(groups), "queries": len(judged), "mean_words": round(words / max(len(groups), 1), 1),
            "per_doc": per_doc, "source": str(source), "split": split, "seed": seed}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", help="a BEIR folder of short documents")
    p.add_argument("out", help="where to write the long collection (a new BEIR folder, outside the repository)")
    p.add_argument("--per-doc", type=int, default=15, help="source documents per long document (default 15)")
    p.add_argument("--split", default="test", help="the judged split to carry over (default test)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(build(args.source, args.out, args.per_doc, args.split, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
