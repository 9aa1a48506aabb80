"""The encoder runtime: tokenize, one forward pass, dense vector and concept weights.

Why one pass for both outputs: the SESA concept head works on the same pooled, normalised
embedding the dense field stores, so each text costs one model pass plus a small matrix
product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference_server.runtime.backend import ModelBackend
from inference_server.runtime.concept_head import ConceptHead, ConceptHits
from inference_server.tokenization import TextTokenizer, Tokenized, pad_batch


@dataclass(slots=True)
class EncodeItem:
    """One text on its way through the batcher."""

    seq: Tokenized
    top_k: int = 0  # concepts wanted for this text (0 = none)
    head: ConceptHead | None = None  # the concept space to map it into (None: the runtime's default space)


@dataclass(slots=True)
class EncodeResult:
    dense: np.ndarray  # float32 [dim], L2-normalised
    concepts: ConceptHits | None


@dataclass
class TextWindows:
    """A text cut into windows for chunked Encode: the windows' character spans and token sequences."""

    spans: list[tuple[int, int, int]]  # (start_char, end_char, content tokens)
    seqs: list[Tokenized]
    truncated: bool  # the windows stop before the text ends (max_windows reached)
    text_length: int

    @property
    def coverage(self) -> float:
        """Share of the text's characters up to the end of the last window."""
        return 1.0 if self.text_length == 0 else min(1.0, self.spans[-1][1] / self.text_length)


def pool_windows(results: list[EncodeResult], top_k: int) -> tuple[np.ndarray, ConceptHits | None]:
    """One document from its windows: the L2-normalised mean of their vectors, and each concept's strongest weight
    over the windows, top ``top_k`` (:func:`pool_concepts`)."""
    dense = np.mean([r.dense for r in results], axis=0).astype(np.float32)
    dense /= max(float(np.linalg.norm(dense)), 1e-12)
    return dense, pool_concepts([r.concepts for r in results], top_k)


def pool_concepts(parts: list[ConceptHits | None], top_k: int) -> ConceptHits | None:
    """Each concept's strongest weight over the parts of one text (windows, segments), top ``top_k``. Exact from
    each part's own top-k: a concept missing from the top-k of the part where it peaks is outranked there by k
    concepts whose pooled weights are at least as strong. None when no part has concepts."""
    if all(p is None for p in parts):
        return None
    best: dict[int, float] = {}
    for p in parts:
        if p is None:
            continue
        for j, w in zip(p.indices.tolist(), p.weights.tolist()):
            if w > best.get(j, 0.0):
                best[j] = w
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:max(0, top_k)]
    return ConceptHits(np.array([j for j, _ in ranked], dtype=np.int64),
                       np.array([w for _, w in ranked], dtype=np.float32))


@dataclass
class ModelMeta:
    """What Info reports about a loaded model."""

    role: str
    model_id: str
    version: str
    dimension: int
    precision: str
    max_sequence_length: int
    source: str
    engine: str = "onnxruntime"
    reason: str = ""  # why this engine and precision were chosen


def length_sorted_passes(lengths: list[int], batch_tokens: int, max_batch: int):
    """Indices of each forward pass over texts sorted by token length: a pass grows while it stays within
    ``max_batch`` texts and ``batch_tokens`` padded tokens (always at least one text)."""
    order = np.argsort(lengths, kind="stable")
    i = 0
    while i < len(order):
        j, longest = i, 0
        while j < len(order) and j - i < max_batch:
            new_longest = max(longest, lengths[order[j]])
            if j > i and new_longest * (j - i + 1) > batch_tokens:
                break
            longest, j = new_longest, j + 1
        yield order[i:j]
        i = j


class EncoderRuntime:
    def __init__(
        self,
        backend: ModelBackend,
        tokenizer: TextTokenizer,
        meta: ModelMeta,
        head: ConceptHead | None = None,
        query_max_tokens: int = 64,
        passage_max_tokens: int = 256,
    ):
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.head = head
        # further concept spaces served beside the default one (by name; see ``space``)
        self.extra_heads: dict[str, ConceptHead] = {}
        self.query_max_tokens = min(query_max_tokens, meta.max_sequence_length)
        self.passage_max_tokens = min(passage_max_tokens, meta.max_sequence_length)
        if head is not None and meta.dimension and head.dimension != meta.dimension:
            raise ValueError(
                f"concept space {head.name} has dimension {head.dimension} but the encoder outputs {meta.dimension}; "
                "rebuild it with this encoder (sesa-server concepts build)"
            )

    @property
    def heads(self) -> list[ConceptHead]:
        """Every concept space served, the default one first."""
        return ([self.head] if self.head is not None else []) + [h for h in self.extra_heads.values()
                                                                  if h is not self.head]

    def add_space(self, head: ConceptHead) -> None:
        """Serve ``head`` beside the default space, under its name."""
        if head.dimension != self.meta.dimension:
            raise ValueError(f"concept space {head.name} has dimension {head.dimension} but the encoder outputs "
                             f"{self.meta.dimension}")
        if any(h.name == head.name for h in self.heads):
            raise ValueError(f"two concept spaces are named {head.name!r}: each served space needs its own name")
        self.extra_heads[head.name] = head

    def space(self, name: str) -> ConceptHead | None:
        """The concept space called ``name`` ("" = the default one); KeyError names the ones served."""
        if not name or (self.head is not None and name == self.head.name):
            return self.head
        try:
            return self.extra_heads[name]
        except KeyError:
            served = ", ".join(h.name for h in self.heads) or "none"
            raise KeyError(f"unknown concept space {name!r}; this server serves: {served}") from None

    def max_tokens(self, query: bool) -> int:
        return self.query_max_tokens if query else self.passage_max_tokens

    def tokenize(self, texts: list[str], query: bool = False) -> list[Tokenized]:
        return self.tokenizer.encode(texts, self.max_tokens(query))

    @property
    def passage_window(self) -> int:
        """Content tokens of one passage window (the passage length without the special tokens)."""
        return max(1, self.passage_max_tokens - self.tokenizer.specials_single)

    def plan_windows(self, texts: list[str], window: int, overlap: int, max_windows: int,
                     full_last: bool = False) -> list[TextWindows]:
        """Cut each text into windows (``TextTokenizer.window_spans``, sentence ends preferred) and tokenize them."""
        window = self.passage_window if window <= 0 else min(window, self.passage_window)
        plans = []
        for text in texts:
            spans, cut = self.tokenizer.window_spans(text, window, overlap, max_windows, full_last=full_last)
            plans.append(TextWindows(spans, [], cut, len(text)))
        flat = [text[s:e] if tokens else text for text, plan in zip(texts, plans) for s, e, tokens in plan.spans]
        seqs = self.tokenize(flat, query=False)
        pos = 0
        for plan in plans:
            plan.seqs = seqs[pos:pos + len(plan.spans)]
            pos += len(plan.spans)
        return plans

    def compute(self, items: list[EncodeItem]) -> list[EncodeResult]:
        """One forward pass (called by the batcher's worker thread)."""
        batch = pad_batch([it.seq for it in items], self.tokenizer.pad_id)
        emb = self.backend.encode(batch)
        hits: list[ConceptHits | None] = [None] * len(items)
        by_head: dict[int, list[int]] = {}
        for i, it in enumerate(items):
            head = it.head or self.head
            if head is not None and it.top_k:
                by_head.setdefault(id(head), []).append(i)
        for rows in by_head.values():  # one matrix product per concept space in the pass
            head = items[rows[0]].head or self.head
            assert head is not None
            for i, h in zip(rows, head.top_k(emb[rows], [items[i].top_k for i in rows])):
                hits[i] = h
        return [EncodeResult(emb[i], hits[i]) for i in range(len(items))]

    def embed(self, texts: list[str], query: bool = False, batch_tokens: int = 4096, max_batch: int = 64,
              progress=None) -> np.ndarray:
        """Offline embedding of many texts (concept building, benchmarks): length-sorted passes."""
        if not texts:
            return np.zeros((0, self.meta.dimension), dtype=np.float32)
        seqs = self.tokenize(texts, query)
        rows: list[np.ndarray | None] = [None] * len(texts)
        for idx in length_sorted_passes([s.num_tokens for s in seqs], batch_tokens, max_batch):
            emb = self.backend.encode(pad_batch([seqs[k] for k in idx], self.tokenizer.pad_id))
            for k, v in zip(idx, emb):
                rows[int(k)] = v
            if progress is not None:
                progress(len(idx))
        return np.stack(rows).astype(np.float32, copy=False)
