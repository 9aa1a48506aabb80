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


def _sentences(n: int) -> str:
    return " ".join(f"Sentence number {i} talks about topic {i % 7} and nothing else." for i in range(n))


def test_windows_hold_whole_sentences_overlap_and_cover_the_text():
    tok = TextTokenizer(builtin_tokenizer(), 512)
    text = _sentences(60)
    windows, cut = tok.window_spans(text, window=64, overlap=16, max_windows=100)
    assert not cut and len(windows) > 5
    assert windows[0][0] == 0 and windows[-1][1] == len(text)
    for (s, e, n), (s2, e2, _) in zip(windows, windows[1:]):
        assert 32 <= n <= 64  # never longer than the window; shortened to a sentence end in its second half
        assert text[e - 1] == "." and s < s2 < e  # ends on a sentence end; the next one overlaps it
        assert tok.count_tokens(text[s2:e]) <= 16 + 2  # about `overlap` tokens shared (word pieces at the seam)
    assert all(len(tok.encode([text[s:e]], 512)[0].ids) - 2 == n for s, e, n in windows)


def test_windows_stop_at_max_windows_and_say_so():
    tok = TextTokenizer(builtin_tokenizer(), 512)
    text = _sentences(60)
    windows, cut = tok.window_spans(text, window=64, overlap=16, max_windows=3)
    assert len(windows) == 3 and cut and windows[-1][1] < len(text)
    one, cut_short = tok.window_spans("A short text.", window=64, overlap=16, max_windows=3)
    assert one == [(0, 13, 4)] and not cut_short
    fixed, _ = tok.window_spans(text, window=64, overlap=16, max_windows=3, sentences=False)
    assert [n for _, _, n in fixed] == [64, 64, 64]  # the reranker's fixed strides


def test_full_last_window_holds_a_whole_window_instead_of_a_tail():
    tok = TextTokenizer(builtin_tokenizer(), 512)
    text = _sentences(9)  # about 1.5 windows of 64 tokens: the plain rule leaves a short tail
    tail, cut = tok.window_spans(text, window=64, overlap=16, max_windows=16)
    full, cut_full = tok.window_spans(text, window=64, overlap=16, max_windows=16, full_last=True)
    assert not cut and not cut_full and len(tail) == len(full) == 2
    assert tail[-1][2] < 64 and full[0] == tail[0]
    s, e, n = full[-1]
    assert e == len(text) and s < tail[-1][0] and 60 <= n <= 64  # ends at the end, starts earlier, (about) full
    assert s == 0 or text[s - 1].isspace()  # at a word start
    assert len(tok.encode([text[s:e]], 512)[0].ids) - 2 == n
    # a text of one window, or one cut by max_windows, is unchanged
    assert tok.window_spans("A short text.", 64, 16, 3, full_last=True) == tok.window_spans("A short text.", 64, 16, 3)
    long = _sentences(60)
    assert tok.window_spans(long, 64, 16, 3, full_last=True) == tok.window_spans(long, 64, 16, 3)
