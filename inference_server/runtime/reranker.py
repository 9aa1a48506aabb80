"""The cross-encoder runtime: (query, passage) pairs -> one logit, long passages in chunks.

Why chunks: a cross-encoder sees at most ``max_tokens`` per pair. A long passage is split
into overlapping windows of its tokens (stride = window - overlap), each window is scored
with the query, and the passage gets the best window's score (max-pooling: relevance is
usually local). ``truncated`` says that tokens beyond the last scored window were not seen;
with chunking off only the first window is scored.

Windows are planned on token offsets and turned back into character spans, so the pair
encoding (special tokens, type ids) is done by the model's own tokenizer template and works
for BERT-style and other tokenizers alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inference_server.runtime.backend import ModelBackend
from inference_server.runtime.domain import DomainBank
from inference_server.runtime.encoder import ModelMeta
from inference_server.tokenization import TextTokenizer, Tokenized, pad_batch


@dataclass
class PassagePlan:
    pairs: list[Tokenized]
    truncated: bool


class RerankerRuntime:
    def __init__(
        self,
        backend: ModelBackend,
        tokenizer: TextTokenizer,
        meta: ModelMeta,
        max_tokens: int = 256,
        query_max_tokens: int = 64,
        overlap_tokens: int = 32,
    ):
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.max_tokens = min(max_tokens, meta.max_sequence_length)
        self.query_max_tokens = query_max_tokens
        self.overlap_tokens = overlap_tokens
        # where the model came from, and its domain bank when it ships one that fits the encoder
        # (set by the loader: the check needs the encoder's embeddings)
        self.model_dir: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.domain: DomainBank | None = None

    def _cut_query(self, query: str) -> tuple[str, int]:
        # leave at least 8 tokens of passage window even when rerank.max_tokens is tiny
        limit = max(1, min(self.query_max_tokens, self.max_tokens // 2,
                           self.max_tokens - self.tokenizer.specials_pair - 8))
        spans, more = self.tokenizer.word_spans(query, limit)
        if not spans:
            return "", 0  # no tokens at all: the empty string tokenizes the same, without the cost
        return (query[: spans[-1][1]] if more else query), len(spans)

    def plan(self, query: str, passages: list[str], chunk: bool, max_chunks: int) -> list[PassagePlan]:
        """Tokenized pairs for each passage (1..max_chunks windows) and its truncation flag."""
        q_text, q_len = self._cut_query(query)
        window = self.max_tokens - self.tokenizer.specials_pair - q_len
        if window < 8:
            raise ValueError(f"reranker window too small ({window} tokens) for this query")
        n_chunks = max(1, max_chunks) if chunk else 1
        texts: list[str] = []
        owners: list[int] = []
        flags: list[bool] = []
        for pi, passage in enumerate(passages):
            windows, cut = self.tokenizer.window_spans(passage, window, self.overlap_tokens, n_chunks,
                                                       sentences=False)
            flags.append(cut)
            for start, end, tokens in windows:
                # no tokens: same pair encoding, without re-tokenizing the passage
                texts.append(passage[start:end] if tokens else "")
                owners.append(pi)
        pairs = self.tokenizer.encode_pairs([q_text] * len(texts), texts, self.max_tokens)
        plans = [PassagePlan([], flags[i]) for i in range(len(passages))]
        for o, seq in zip(owners, pairs):
            plans[o].pairs.append(seq)
        return plans

    def compute(self, seqs: list[Tokenized]) -> list[float]:
        """One forward pass over pairs (called by the batcher's worker thread)."""
        scores = self.backend.score(pad_batch(seqs, self.tokenizer.pad_id))
        return [float(x) for x in np.asarray(scores, dtype=np.float32)]
