"""A small BM25 (Lucene formula) in numpy/scipy, for hard negatives and the reference hybrid.

No extra dependency: analyzer = lowercase, split on non-alphanumerics, Lucene's English stop
words, and a light English stemmer (Lucene ``EnglishMinimalStemmer`` plural rules plus a few
common suffixes). Scores follow Lucene: idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
tf part = tf / (tf + k1 * (1 - b + b * len / avglen)). It is a reference implementation
for offline work (a few thousand documents), not a search engine.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

LUCENE_ENGLISH_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"]
)
_TOKEN = re.compile(r"[a-z0-9]+")


def stem(w: str) -> str:
    """Light English stemming: plurals (Lucene minimal stemmer) and -ing/-ed/-ly on long words."""
    if len(w) > 3 and w.isalpha():
        if w.endswith("ies") and not w.endswith(("eies", "aies")):
            w = w[:-3] + "y"
        elif w.endswith("es") and not w.endswith(("aes", "ees", "oes")) and w[-3] in "sxz":
            w = w[:-2]
        elif w.endswith("s") and not w.endswith(("us", "ss", "is")):
            w = w[:-1]
        if len(w) > 5:
            for suf in ("ing", "ed", "ly"):
                if w.endswith(suf) and len(w) - len(suf) >= 4:
                    w = w[: -len(suf)]
                    break
    return w


def analyze(text: str) -> list[str]:
    return [stem(t) for t in _TOKEN.findall(text.lower()) if t not in LUCENE_ENGLISH_STOP]


class BM25:
    def __init__(self, docs: list[str], k1: float = 0.9, b: float = 0.4):
        from scipy import sparse

        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for i, d in enumerate(docs):
            toks = analyze(d)
            lengths[i] = len(toks)
            for t, c in Counter(toks).items():
                j = self.vocab.setdefault(t, len(self.vocab))
                rows.append(i)
                cols.append(j)
                vals.append(c)
        n = len(docs)
        tf = sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, max(1, len(self.vocab))))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=tf.shape[1]).astype(np.float32)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        tf = tf.tocoo()
        w = tf.data / (tf.data + norm[tf.row])
        # doc-term weights (idf applied at query time), stored term-major for fast query scoring
        self.matrix = sparse.csc_matrix((w.astype(np.float32), (tf.row, tf.col)), shape=tf.shape)
        self.n_docs = n

    def scores(self, query: str) -> np.ndarray:
        ids = [self.vocab[t] for t in analyze(query) if t in self.vocab]
        out = np.zeros(self.n_docs, dtype=np.float32)
        for j, c in Counter(ids).items():  # repeated query terms count again, as in Lucene
            col = self.matrix.getcol(j)
            out[col.indices] += c * self.idf[j] * col.data
        return out

    def search(self, query: str, k: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """(doc indices, scores) of the top k, best first (documents with score 0 left out)."""
        s = self.scores(query)
        k = min(k, len(s))
        idx = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        idx = idx[np.argsort(-s[idx], kind="stable")]
        idx = idx[s[idx] > 0]
        return idx, s[idx]
