"""Tokenization with HF ``tokenizers``: no fixed padding, explicit truncation, honest counts.

Why: the tokenizer.json shipped with all-MiniLM-L6-v2 pads every input to 128 tokens and
truncates at 128, so short queries would cost as much as passages and passages would be cut
at 128. We reset padding (the batcher pads each forward pass to its own longest sequence) and
set truncation per text kind, and report for each text whether it was cut and how many tokens
the model saw.

Long texts are tokenized on a whitespace-aligned character prefix first (BERT-style
tokenization is word-local, so the prefix's tokens are a prefix of the full text's tokens);
only when that prefix does not fill the window is the whole text tokenized. A 1 MB text
therefore costs about as much as a 4 KB one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

# A window of N tokens virtually never needs more than this many characters per token.
_CHARS_PER_TOKEN_CAP = 16


@dataclass(frozen=True, slots=True)
class Tokenized:
    """One sequence ready for the model (special tokens included)."""

    ids: np.ndarray  # int64 [n]
    type_ids: np.ndarray  # int64 [n]
    truncated: bool

    @property
    def num_tokens(self) -> int:
        return int(self.ids.shape[0])


def resolve_tokenizer_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise FileNotFoundError(f"tokenizer.json not found at {path}")
    return p


def _whitespace_cut(text: str, limit: int) -> int:
    """Index <= limit just after the last whitespace before ``limit`` (or ``limit``)."""
    window = text[max(0, limit - 200):limit]
    for i in range(len(window) - 1, -1, -1):
        if window[i].isspace():
            return max(0, limit - 200) + i
    return limit


class TextTokenizer:
    """Thread-safe wrapper that owns one configured ``Tokenizer`` per truncation length."""

    def __init__(self, tokenizer_file: str | Path, model_max_length: int = 512):
        self.path = resolve_tokenizer_file(tokenizer_file)
        self._json = self.path.read_text(encoding="utf-8")
        base = Tokenizer.from_str(self._json)
        base.no_padding()
        base.no_truncation()
        self._base = base
        self.model_max_length = model_max_length
        self._by_len: dict[int, Tokenizer] = {}
        self._lock = threading.Lock()
        self.pad_id = self._pad_id(base)
        self.specials_single = base.num_special_tokens_to_add(False)
        self.specials_pair = base.num_special_tokens_to_add(True)

    @staticmethod
    def _pad_id(tok: Tokenizer) -> int:
        for t in ("[PAD]", "<pad>", "<PAD>"):
            i = tok.token_to_id(t)
            if i is not None:
                return int(i)
        return 0

    def _tok(self, max_length: int) -> Tokenizer:
        t = self._by_len.get(max_length)
        if t is None:
            with self._lock:
                t = self._by_len.get(max_length)
                if t is None:
                    t = Tokenizer.from_str(self._json)
                    t.no_padding()
                    t.enable_truncation(max_length=max_length, strategy="longest_first")
                    self._by_len[max_length] = t
        return t

    def encode(self, texts: list[str], max_tokens: int) -> list[Tokenized]:
        """Tokenize single texts, truncated at ``max_tokens`` (special tokens included)."""
        max_tokens = min(max_tokens, self.model_max_length)
        cap = max_tokens * _CHARS_PER_TOKEN_CAP
        cut_at = [(_whitespace_cut(t, cap) if len(t) > cap else -1) for t in texts]
        inputs = [t if c < 0 else t[:c] for t, c in zip(texts, cut_at)]
        encs = self._tok(max_tokens).encode_batch(inputs)
        out: list[Tokenized] = []
        redo: list[int] = []
        for i, (enc, c) in enumerate(zip(encs, cut_at)):
            overflow = len(enc.overflowing) > 0
            if c >= 0 and not overflow:
                redo.append(i)  # the prefix fit: we cannot know without the full text
                out.append(None)  # type: ignore[arg-type]
                continue
            out.append(self._pack(enc, overflow or c >= 0))
        if redo:
            full = self._tok(max_tokens).encode_batch([texts[i] for i in redo])
            for i, enc in zip(redo, full):
                out[i] = self._pack(enc, len(enc.overflowing) > 0)
        return out

    def count_tokens(self, text: str) -> int:
        """Untruncated token count without special tokens (used to plan passage chunks)."""
        return len(self._base.encode(text, add_special_tokens=False).ids)

    def word_spans(self, text: str, max_tokens: int) -> tuple[list[tuple[int, int]], bool]:
        """Character offsets of the first ``max_tokens`` content tokens, and whether more follow."""
        cap = max_tokens * _CHARS_PER_TOKEN_CAP
        piece = text if len(text) <= cap else text[:_whitespace_cut(text, cap)]
        enc = self._base.encode(piece, add_special_tokens=False)
        if len(enc.ids) <= max_tokens and len(piece) < len(text):
            enc = self._base.encode(text, add_special_tokens=False)
        offsets = list(enc.offsets)
        return offsets[:max_tokens], len(offsets) > max_tokens

    def window_spans(self, text: str, window: int, overlap: int, max_windows: int,
                     sentences: bool = True, full_last: bool = False) -> tuple[list[tuple[int, int, int]], bool]:
        """Windows of at most ``window`` content tokens over ``text``: ``(start_char, end_char, tokens)`` each, in
        text order, and whether the text goes on past the last one.

        Neighbours share ``overlap`` tokens (at most half a window). With ``sentences`` a window ends at the last
        sentence end (a token ending in . ! or ? before whitespace) in its second half, when there is one, so a
        window holds whole sentences; the next one then starts ``overlap`` tokens before that end. One rule for
        Encode's chunking and the reranker's passage chunks (which keep fixed strides: ``sentences=False``).
        With ``full_last`` the last window of a text that ends inside it is a whole window: when it would hold fewer
        than ``window`` tokens it starts earlier (at a word start), so no window is a short tail whose few tokens
        outscore the rest of the document by chance.
        """
        window = max(1, window)
        overlap = min(max(0, overlap), window // 2)
        max_windows = max(1, max_windows)
        # shortened windows (sentence ends) advance less: read enough tokens for all of them
        need = window * max_windows if sentences else window + (max_windows - 1) * max(1, window - overlap)
        spans, more = self.word_spans(text, need)
        n = len(spans)
        if n == 0:
            return [(0, len(text), 0)], False
        out: list[tuple[int, int, int]] = []
        start = 0
        while len(out) < max_windows:
            end = min(n, start + window)
            if sentences and end < n:
                for j in range(end - 1, start + window // 2 - 1, -1):
                    stop = spans[j][1]
                    if text[stop - 1] in ".!?" and (stop == len(text) or text[stop].isspace()):
                        end = j + 1
                        break
            out.append((spans[start][0], spans[end - 1][1], end - start))
            if end >= n:
                break
            start = max(end - overlap, start + 1)
        covered = out[-1][1] >= spans[-1][1]
        if full_last and covered and not more and len(out) > 1 and out[-1][2] < window:
            first = max(0, n - window)
            while first < n - 1 and first > 0 and not text[spans[first][0] - 1].isspace():
                first += 1  # a word start, not a subword piece
            if first < n - out[-1][2]:
                out[-1] = (spans[first][0], spans[-1][1], n - first)  # same end: still covered
        return out, more or not covered

    def encode_pairs(self, first: list[str], second: list[str], max_tokens: int) -> list[Tokenized]:
        """Tokenize (query, passage) pairs; only the passage side is truncated.

        Each distinct ``first`` text is tokenized once and joined with every ``second`` by the
        tokenizer's own post-processor (pair template + only_second truncation), which is what
        encoding the pair does. Encoding the pairs directly re-tokenized the query for every
        pair, so a 1 MB query with 2,048 passages cost minutes of CPU.
        """
        if len(first) != len(second):
            raise ValueError("first and second differ in length")
        tok = self._pair_tok(max_tokens)
        distinct = list(dict.fromkeys(first))
        by_text = dict(zip(distinct, self._base.encode_batch(distinct, add_special_tokens=False)))
        seconds = self._base.encode_batch(second, add_special_tokens=False)
        out = []
        for f, enc2 in zip(first, seconds):
            e = tok.post_process(by_text[f], enc2)
            out.append(self._pack(e, len(e.overflowing) > 0))
        return out

    def _pair_tok(self, max_tokens: int) -> Tokenizer:
        key = -max_tokens
        t = self._by_len.get(key)
        if t is None:
            with self._lock:
                t = Tokenizer.from_str(self._json)
                t.no_padding()
                t.enable_truncation(max_length=max_tokens, strategy="only_second")
                self._by_len[key] = t
        return t

    @staticmethod
    def _pack(enc, truncated: bool) -> Tokenized:
        return Tokenized(
            ids=np.asarray(enc.ids, dtype=np.int64),
            type_ids=np.asarray(enc.type_ids, dtype=np.int64),
            truncated=bool(truncated),
        )


def pad_batch(seqs: list[Tokenized], pad_id: int) -> dict[str, np.ndarray]:
    """Pad a list of sequences to the longest one (right padding) for one forward pass."""
    n = max(s.num_tokens for s in seqs)
    b = len(seqs)
    ids = np.full((b, n), pad_id, dtype=np.int64)
    types = np.zeros((b, n), dtype=np.int64)
    mask = np.zeros((b, n), dtype=np.int64)
    for i, s in enumerate(seqs):
        k = s.num_tokens
        ids[i, :k] = s.ids
        types[i, :k] = s.type_ids
        mask[i, :k] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
