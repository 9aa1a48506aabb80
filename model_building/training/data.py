"""BEIR folders and training pairs.

A dataset folder holds ``corpus.jsonl[.gz]`` ({_id, title, text}), ``queries.jsonl`` ({_id, text})
and ``qrels/<split>.tsv`` (header, then query-id, corpus-id, score). A document's text for the
models is ``title + " " + text`` (as in the project's reference baselines).

Self-supervised pairs (no labels needed, so any corpus can be used):

* ``title``: a document's title as the query, the document as the positive;
* ``ict``  (inverse cloze): one sentence of a document's body (6-60 words) as the query, the
  document as the positive. The sentence stays in the document (the positive embedding is
  the cached whole-document one), which makes the task easier than ICT with removal but
  costs no extra encoder passes.

Only training splits may feed training: :func:`training_pairs` refuses ``test``.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from ir.beir import Dataset, DatasetError


@dataclass
class BeirDataset:
    name: str
    path: Path
    doc_ids: list[str]
    titles: list[str]
    bodies: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # split -> qid -> did -> grade

    @property
    def doc_texts(self) -> list[str]:
        return [f"{t} {b}".strip() for t, b in zip(self.titles, self.bodies)]

    def split(self, name: str) -> dict[str, dict[str, int]]:
        if name not in self.qrels:
            raise DatasetError(f"{self.path}: no qrels/{name}.tsv (have {sorted(self.qrels)})")
        return self.qrels[name]

    @property
    def eval_split(self) -> str:
        """The split evaluations report on: ``test`` when there is one, else the first by name."""
        return "test" if "test" in self.qrels else min(self.qrels)

    def judged(self, split: str) -> dict[str, dict[str, int]]:
        """The split's judgements of the queries that exist and have at least one relevant document."""
        qrels = self.split(split)
        return {q: qrels[q] for q in sorted(qrels) if q in self.queries and any(g > 0 for g in qrels[q].values())}

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for d, t, b in zip(self.doc_ids, self.titles, self.bodies):
            h.update(f"{d}\t{t}\t{b}\n".encode())
        return h.hexdigest()


def load_beir(path: str | Path, limit_docs: int | None = None) -> BeirDataset:
    """A BEIR folder in memory, read by the project's one BEIR parser (:class:`ir.beir.Dataset`, which validates
    every line): titles and bodies with whitespace folded, queries, and every qrels split."""
    src = Dataset(path)
    if src.queries_path is None:
        raise DatasetError(f"{src.path} is not a BEIR folder (needs corpus.jsonl[.gz] and queries.jsonl)")
    ids, titles, bodies = [], [], []
    for doc in src.iter_corpus():
        ids.append(doc.id)
        titles.append(" ".join(doc.title.split()))
        bodies.append(" ".join(doc.text.split()))
    qrels = {split: src.qrels(split) for split in src.splits()}
    ds = BeirDataset(src.path.name, src.path, ids, titles, bodies, dict(src.queries), qrels)
    if limit_docs is not None:
        ds = restrict_docs(ds, limit_docs)
    return ds


def restrict_docs(ds: BeirDataset, n: int, seed: int = 0) -> BeirDataset:
    """A smaller dataset for tiny runs: every judged document of every split plus random others."""
    judged = {d for split in ds.qrels.values() for q in split.values() for d in q}
    keep = [i for i, d in enumerate(ds.doc_ids) if d in judged]
    rest = [i for i, d in enumerate(ds.doc_ids) if d not in judged]
    random.Random(seed).shuffle(rest)
    keep = sorted(keep[: n] + rest[: max(0, n - len(keep))])
    kept = {ds.doc_ids[i] for i in keep}
    qrels = {
        s: {q: {d: g for d, g in docs.items() if d in kept} for q, docs in split.items()} for s, split in ds.qrels.items()
    }
    qrels = {s: {q: docs for q, docs in split.items() if docs} for s, split in qrels.items()}
    return BeirDataset(ds.name, ds.path, [ds.doc_ids[i] for i in keep], [ds.titles[i] for i in keep],
                       [ds.bodies[i] for i in keep], ds.queries, qrels)


_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def sentences(text: str, min_words: int = 6, max_words: int = 60) -> list[str]:
    """Sentences of a text (a simple rule: split after . ! ? before a capital or digit)."""
    out = []
    for s in _SENT.split(text):
        n = len(s.split())
        if min_words <= n <= max_words:
            out.append(s.strip())
    return out


@dataclass
class Pair:
    query: str
    doc: int  # index into the dataset's documents
    source: str  # "qrels" | "title" | "ict"
    qid: str = ""


def training_pairs(ds: BeirDataset, split: str = "train", limit_queries: int | None = None,
                   seed: int = 0) -> list[Pair]:
    """Supervised pairs (query text, positive doc index) from a training split."""
    if split == "test":
        raise ValueError("test qrels must never be used for training or tuning")
    index = {d: i for i, d in enumerate(ds.doc_ids)}
    qids = sorted(ds.split(split))
    if limit_queries is not None:
        random.Random(seed).shuffle(qids)
        qids = sorted(qids[:limit_queries])
    out = []
    for q in qids:
        for d, g in sorted(ds.split(split)[q].items()):
            if g > 0 and d in index and ds.queries.get(q):
                out.append(Pair(ds.queries[q], index[d], "qrels", q))
    return out


def self_supervised_pairs(ds: BeirDataset, n_title: int, n_ict: int, seed: int = 0,
                          exclude_docs: set[int] | None = None) -> list[Pair]:
    """Title->document and inverse-cloze sentence->document pairs mined from the corpus."""
    rng = random.Random(seed)
    exclude = exclude_docs or set()
    docs = [i for i in range(len(ds.doc_ids)) if i not in exclude]
    rng.shuffle(docs)
    out: list[Pair] = []
    for i in docs:
        if len(out) >= n_title:
            break
        t = ds.titles[i]
        if len(t.split()) >= 4 and ds.bodies[i]:
            out.append(Pair(t, i, "title"))
    rng.shuffle(docs)
    n = 0
    for i in docs:
        if n >= n_ict:
            break
        sents = sentences(ds.bodies[i])
        if len(sents) >= 3:
            out.append(Pair(rng.choice(sents), i, "ict"))
            n += 1
    return out
