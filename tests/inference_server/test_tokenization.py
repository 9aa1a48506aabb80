"""Tokenization: no fixed padding, explicit truncation, cheap on huge texts."""

from __future__ import annotations

import json
import time

import numpy as np

from inference_server.tokenization import TextTokenizer, pad_batch
from tests.support.inference import builtin_tokenizer


def tok() -> TextTokenizer:
    return TextTokenizer(builtin_tokenizer(), 512)


def test_shipped_tokenizer_pads_to_128_but_ours_does_not():
    shipped = json.loads(builtin_tokenizer().read_text())
    assert shipped["padding"]["strategy"] == {"Fixed": 128}  # the reason for our reset
    t = tok()
    [s] = t.encode(["hello world"], 256)
    assert s.num_tokens == 4 and not s.truncated  # [CLS] hello world [SEP]
    assert s.ids[0] == 101 and s.ids[-1] == 102


def test_truncation_per_kind_and_flags():
    t = tok()
    text = "token " * 300
    q, p, exact = t.encode([text, text, "a " * 254], 64)[0], t.encode([text], 256)[0], t.encode(["a " * 254], 256)[0]
    assert q.num_tokens == 64 and q.truncated
    assert p.num_tokens == 256 and p.truncated and p.ids[-1] == 102
    assert exact.num_tokens == 256 and not exact.truncated  # fits exactly: not truncated


def test_huge_text_is_cheap_and_matches_full_tokenization():
    t = tok()
    big = "The quick brown fox jumps over the lazy dog. " * 25_000  # ~1.1 MB
    t0 = time.perf_counter()
    [s] = t.encode([big], 256)
    assert time.perf_counter() - t0 < 0.5
    [ref] = t.encode([big[:5000]], 256)
    assert s.truncated and np.array_equal(s.ids, ref.ids)


def test_whitespace_heavy_text_falls_back_to_full_text():
    t = tok()
    text = " " * 10_000 + "needle"  # the prefix holds no tokens at all
    [s] = t.encode([text], 64)
    assert not s.truncated and s.num_tokens == 3


def test_pad_batch_pads_to_longest_only():
    t = tok()
    seqs = t.encode(["a", "a b c d e"], 256)
    b = pad_batch(seqs, t.pad_id)
    assert b["input_ids"].shape == (2, 7)
    assert b["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0], [1] * 7]
    assert b["input_ids"].dtype == np.int64


def test_pairs_truncate_only_the_passage():
    t = tok()
    [s] = t.encode_pairs(["short query"], ["long " * 500], 64)
    assert s.num_tokens == 64 and s.truncated
    assert s.type_ids[:4].tolist() == [0, 0, 0, 0] and s.type_ids[-1] == 1


def test_word_spans():
    t = tok()
    spans, more = t.word_spans("alpha beta gamma", 2)
    assert more and len(spans) == 2 and spans[0] == (0, 5)
