"""A catalogue of malformed and edge-case requests against a real in-process server.

The server runs tiny random BERT models (encoder + cross-encoder, exported to ONNX), a
five-concept space and bearer-token auth, on port 0, and every request goes over a real
gRPC channel as bytes (``request_serializer=None``), so hand-crafted wire formats that
protobuf-python refuses to build (invalid UTF-8, lone surrogates, truncated varints) reach
the server exactly like well-formed ones.

Every entry names its defined outcome: a whole-call gRPC status code (with fragments its
message must contain), or OK with per-item error codes ("" = a result) and extra checks.
After the catalogue the server must still answer health SERVING and encode correctly, and
no call may have ended INTERNAL or UNKNOWN.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_server.contract import inference_pb2 as pb

SERVICE = "sesa.inference.v1.Inference"
TOKEN = "catalogue-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
DIM = 32  # tiny encoder's dimension
N_CONCEPTS = 5
MAX_BYTES = 1 << 20  # limits.max_text_bytes (default)
MAX_TEXTS = 2048  # limits.max_texts_per_call (default)
QUERY_TOKENS, PASSAGE_TOKENS = 64, 256  # limits.query_max_tokens / passage_max_tokens (defaults)
OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
INV = "INVALID_ARGUMENT"
RESPONSES = {"Encode": pb.EncodeResponse, "Rerank": pb.RerankResponse, "Info": pb.InfoResponse}


# -- hand-crafted wire format ------------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers: two's complement, 10 bytes, as protobuf writes int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fld(num: int, wire_type: int, payload: bytes | int) -> bytes:
    """One field: tag, then the payload (length-prefixed for wire type 2, a varint for 0)."""
    tag = varint(num << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(int(payload))
    if wire_type == 2:
        return tag + varint(len(payload)) + payload  # type: ignore[arg-type]
    return tag + payload  # type: ignore[operator]


def text_field(raw: bytes) -> bytes:
    """EncodeRequest.texts / RerankRequest.query entry (field 1) holding raw bytes."""
    return fld(1, 2, raw)


def seeded_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


# -- the catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    method: str  # Encode / Rerank / Info, or a full "/package.Service/Method" path
    request: Callable[[], Any]  # a message or raw bytes, built lazily (some are 10 MB)
    code: grpc.StatusCode = OK  # status of the whole call
    details: tuple[str, ...] = ()  # fragments the status message must contain
    items: tuple[str, ...] | None = None  # per-item error codes in order ("" = a result)
    check: Callable[[Any], None] | None = None  # more assertions on the decoded response
    timeout: float = 60.0
    metadata: tuple[tuple[str, str], ...] = AUTH


def enc(*texts: str, **opts: Any) -> Callable[[], pb.EncodeRequest]:
    return lambda: pb.EncodeRequest(texts=list(texts), options=pb.EncodeOptions(**opts))


def enc_lazy(make: Callable[[], list[str]], **opts: Any) -> Callable[[], pb.EncodeRequest]:
    return lambda: pb.EncodeRequest(texts=make(), options=pb.EncodeOptions(**opts))


def rr(query: str | Callable[[], str], passages: list[str] | Callable[[], list[str]], **opts: Any):
    def make() -> pb.RerankRequest:
        q = query() if callable(query) else query
        p = passages() if callable(passages) else passages
        return pb.RerankRequest(query=q, passages=p, options=pb.RerankOptions(**opts))

    return make


def raw(data: bytes | Callable[[], bytes]) -> Callable[[], bytes]:
    return data if callable(data) else (lambda: data)


# checks on OK responses


def tokens(n: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        assert all(e.num_tokens == n for e in r.embeddings if not e.HasField("error")), [e.num_tokens for e in
                                                                                        r.embeddings]
    return check


def truncated_at(n: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for e in r.embeddings:
            assert e.truncated and e.num_tokens == n, (e.truncated, e.num_tokens)
    return check


def not_truncated(r: Any) -> None:
    assert not any(e.truncated for e in r.embeddings)


def at_most_concepts(k: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for e in r.embeddings:
            assert 0 < len(e.concepts) <= k, len(e.concepts)
    return check


def labels_at_most(k: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for e in r.embeddings:
            assert len(e.top_labels) <= k
    return check


def n_results(n: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        got = len(r.embeddings) if isinstance(r, pb.EncodeResponse) else len(r.scores)
        assert got == n, got
    return check


def no_dense_no_concepts(r: Any) -> None:
    for e in r.embeddings:
        assert len(e.dense) == 0 and len(e.concepts) == 0 and len(e.top_labels) == 0 and e.num_tokens > 0


def dense_only(r: Any) -> None:
    for e in r.embeddings:
        assert len(e.dense) == DIM and len(e.concepts) == 0


def concepts_only(r: Any) -> None:
    for e in r.embeddings:
        assert len(e.dense) == 0 and len(e.concepts) > 0


def identical_vectors(r: Any) -> None:
    first = list(r.embeddings[0].dense)
    assert all(list(e.dense) == first for e in r.embeddings)


def chunks(lo: int, hi: int, truncated: bool | None = None) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for s in r.scores:
            if not s.HasField("error"):
                assert lo <= s.chunks <= hi, s.chunks
                if truncated is not None:
                    assert s.truncated == truncated
    return check


def all_of(*checks: Callable[[Any], None]) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for c in checks:
            c(r)
    return check


def info_ok(r: Any) -> None:
    assert [m.role for m in r.models] == ["encoder", "reranker"] and r.limits.max_texts_per_call == MAX_TEXTS


LONG_WORDS = "lorem ipsum dolor sit amet " * 40  # ~1,000 chars: over every window
MB_WORDS = ("lorem ipsum " * (MAX_BYTES // 12 + 1))[:MAX_BYTES]  # exactly 1 MiB of words
TEN_MB = 10 * MAX_BYTES
ZW_QUERY_CHARS = (MAX_BYTES - 1000) // 3  # zero-width spaces are 3 bytes each: just under 1 MiB


def mixed(codes: str) -> tuple[str, ...]:
    """'.x.' -> ("", INV, "")"""
    return tuple("" if c == "." else INV for c in codes)


CATALOGUE: list[Case] = [
    # --- Encode: empty and blank ---------------------------------------------------------------
    Case("encode/no texts", "Encode", enc(), items=()),
    Case("encode/empty string", "Encode", enc(""), items=(INV,)),
    Case("encode/single space", "Encode", enc(" "), items=(INV,)),
    Case("encode/ascii whitespace mix", "Encode", enc("\t\n\r \x0b\x0c"), items=(INV,)),
    Case("encode/unicode whitespace only", "Encode", enc("\u00a0\u2003\u3000\u2028\u2029\u0085\u1680"),
         items=(INV,)),
    Case("encode/1 MiB of spaces", "Encode", enc_lazy(lambda: [" " * MAX_BYTES]), items=(INV,)),
    Case("encode/over 1 MiB of spaces", "Encode", enc_lazy(lambda: [" " * (MAX_BYTES + 1)]), items=(INV,)),
    Case("encode/all blank variants", "Encode", enc("", " ", "\n", "\t\t"), items=mixed("xxxx")),
    Case("encode/blank between good texts keeps order", "Encode", enc("alpha", "", "beta", " ", "gamma"),
         items=mixed(".x.x.")),
    Case("encode/2048 empty texts", "Encode", enc_lazy(lambda: [""] * MAX_TEXTS), items=(INV,) * MAX_TEXTS),
    # --- Encode: content-free characters (a defined result: only [CLS] [SEP]) --------------------
    Case("encode/NUL only", "Encode", enc("\x00"), items=("",), check=tokens(2)),
    Case("encode/NUL inside a word", "Encode", enc("abc\x00def"), items=("",)),
    Case("encode/all C0 controls", "Encode", enc("".join(chr(i) for i in range(32))), items=("",), check=tokens(2)),
    Case("encode/DEL and C1 controls", "Encode", enc("\x7f\x80\x9f"), items=("",), check=tokens(2)),
    Case("encode/zero-width space only", "Encode", enc("\u200b"), items=("",), check=tokens(2)),
    Case("encode/zero-width joiners between words", "Encode", enc("zero\u200dwidth\u200cjoin\u2060ers"),
         items=("",)),
    Case("encode/byte order mark", "Encode", enc("\ufeff"), items=("",), check=tokens(2)),
    Case("encode/BOM before text", "Encode", enc("\ufeffhello world"), items=("",)),
    Case("encode/RTL override only", "Encode", enc("\u202e\u202c"), items=("",), check=tokens(2)),
    Case("encode/RTL override spoofing", "Encode", enc("invoice\u202efdp.exe"), items=("",)),
    Case("encode/LRM RLM with Arabic", "Encode", enc("\u200fمرحبا\u200e hello"), items=("",)),
    Case("encode/combining marks only", "Encode", enc("\u0301" * 10), items=("",), check=tokens(2)),
    Case("encode/combining accents", "Encode", enc("e\u0301" * 1000), items=("",)),
    Case("encode/zalgo", "Encode", enc("h" + "\u0336\u0337\u0338" * 500 + "ello"), items=("",)),
    Case("encode/replacement characters", "Encode", enc("\ufffd" * 10), items=("",)),
    Case("encode/private use", "Encode", enc("\ue000\uf8ff\U000f0000"), items=("",)),
    Case("encode/noncharacters", "Encode", enc("\ufffe\uffff\U0010ffff"), items=("",)),
    Case("encode/tag characters", "Encode", enc("\U000e0001\U000e0041"), items=("",)),
    Case("encode/1 MiB of NUL", "Encode", enc_lazy(lambda: ["\x00" * MAX_BYTES]), items=("",), check=tokens(2)),
    Case("encode/~1 MiB of zero-width spaces", "Encode", enc_lazy(lambda: ["\u200b" * ZW_QUERY_CHARS]),
         items=("",), check=tokens(2)),
    # --- Encode: scripts ---------------------------------------------------------------------
    Case("encode/CJK", "Encode", enc("日本語のテキストです。中文文本。한국어 텍스트"), items=("",)),
    Case("encode/Arabic", "Encode", enc("مرحبا بالعالم، هذا نص عربي"), items=("",)),
    Case("encode/Hebrew", "Encode", enc("שלום עולם"), items=("",)),
    Case("encode/Devanagari", "Encode", enc("नमस्ते दुनिया, यह हिंदी पाठ है"), items=("",)),
    Case("encode/Thai (no spaces)", "Encode", enc("สวัสดีชาวโลกนี่คือข้อความภาษาไทย"), items=("",)),
    Case("encode/Cyrillic and Greek", "Encode", enc("Привет мир Γειά σου κόσμε"), items=("",)),
    Case("encode/emoji", "Encode", enc("😀🎉👍🏽"), items=("",)),
    Case("encode/emoji ZWJ family and flags", "Encode", enc("👨‍👩‍👧‍👦 🇩🇪🇯🇵 🏳️‍🌈"), items=("",)),
    Case("encode/mixed scripts in one text", "Encode", enc("Hello 世界 مرحبا नमस्ते Привет 😀 שלום"), items=("",)),
    Case("encode/astral math letters", "Encode", enc("𝐀𝐁𝐂 𝔸𝔹ℂ 𐀀𐀁"), items=("",)),
    Case("encode/one text per script in one call", "Encode",
         enc("english", "日本語", "عربي", "हिंदी", "ไทย", "русский", "😀"), items=("",) * 7),
    # --- Encode: long texts and the byte limit ---------------------------------------------------
    Case("encode/long single word 100k chars", "Encode", enc_lazy(lambda: ["a" * 100_000]), items=("",),
         check=tokens(3)),
    Case("encode/long single word exactly 1 MiB", "Encode", enc_lazy(lambda: ["a" * MAX_BYTES]), items=("",),
         check=tokens(3)),
    Case("encode/1 MiB of words (at the limit)", "Encode", enc_lazy(lambda: [MB_WORDS]), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/1 MiB + 1 byte (just over)", "Encode", enc_lazy(lambda: [MB_WORDS + "x"]), items=(INV,)),
    Case("encode/1 MiB of 2-byte chars (at the limit)", "Encode", enc_lazy(lambda: ["é" * (MAX_BYTES // 2)]),
         items=("",)),
    Case("encode/1 MiB of 2-byte chars + 1 (over)", "Encode", enc_lazy(lambda: ["é" * (MAX_BYTES // 2) + "a"]),
         items=(INV,)),
    Case("encode/1 MiB of 4-byte emoji (at the limit)", "Encode", enc_lazy(lambda: ["😀" * (MAX_BYTES // 4)]),
         items=("",)),
    Case("encode/CJK under the char count but over the byte limit", "Encode",
         enc_lazy(lambda: ["日" * (MAX_BYTES // 3 + 1)]), items=(INV,)),
    Case("encode/10 MB text", "Encode", enc_lazy(lambda: ["x" * TEN_MB]), items=(INV,), timeout=30),
    Case("encode/10 MB text between good ones", "Encode", enc_lazy(lambda: ["ok", "y " * (TEN_MB // 2), "fine"]),
         items=mixed(".x."), timeout=30),
    Case("encode/three 10 MB texts", "Encode", enc_lazy(lambda: ["z" * TEN_MB] * 3), items=(INV,) * 3, timeout=30),
    Case("encode/100k newlines between words", "Encode", enc_lazy(lambda: ["a\n" * 100_000]), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/100k exclamation marks", "Encode", enc_lazy(lambda: ["!" * 100_000]), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/long URL", "Encode", enc_lazy(lambda: ["https://example.com/" + "a/b?c=d&" * 2000]), items=("",)),
    Case("encode/base64 blob 500 KB", "Encode",
         enc_lazy(lambda: [__import__("base64").b64encode(seeded_bytes(1, 375_000)).decode()]), items=("",)),
    # --- Encode: text that looks like other types --------------------------------------------------
    Case("encode/numbers as text", "Encode", enc("12345", "3.14e10", "-0", "NaN", "Infinity"), items=("",) * 5),
    Case("encode/null-like strings", "Encode", enc("null", "None", "undefined", "nil"), items=("",) * 4),
    Case("encode/JSON array as text", "Encode", enc(json.dumps([1, 2, [3, {"a": None}]])), items=("",)),
    Case("encode/JSON object as text", "Encode", enc(json.dumps({"title": {"en": "x"}, "n": 1})), items=("",)),
    Case("encode/HTML and script", "Encode", enc("<script>alert(1)</script><b>bold</b>"), items=("",)),
    Case("encode/SQL injection", "Encode", enc("'; DROP TABLE docs; --"), items=("",)),
    Case("encode/special token strings", "Encode", enc("[CLS] [SEP] [MASK] [PAD] [UNK]"), items=("",)),
    Case("encode/format string", "Encode", enc("%s %d {0} ${x} %n"), items=("",)),
    Case("encode/100 identical texts", "Encode", enc(*["same text"] * 100), items=("",) * 100,
         check=identical_vectors),
    # --- Encode: batch size --------------------------------------------------------------------
    Case("encode/10,000 texts", "Encode", enc_lazy(lambda: ["t"] * 10_000), INVALID,
         ("10000 texts", "max_texts_per_call=2048")),
    Case("encode/2049 texts (one over)", "Encode", enc_lazy(lambda: ["t"] * (MAX_TEXTS + 1)), INVALID,
         ("2049 texts", "max_texts_per_call=2048")),
    Case("encode/exactly 2048 texts", "Encode", enc_lazy(lambda: [f"text {i}" for i in range(MAX_TEXTS)]),
         items=("",) * MAX_TEXTS),
    Case("encode/1,000,000 empty texts (2 MB message)", "Encode", raw(lambda: b"\x0a\x00" * 1_000_000), INVALID,
         ("1000000 texts", "max_texts_per_call=2048")),
    Case("encode/70 MB message (over max_message_bytes)", "Encode", raw(lambda: text_field(b"w" * (70 << 20))),
         grpc.StatusCode.RESOURCE_EXHAUSTED, ("larger than max",)),
    # --- Encode: options ---------------------------------------------------------------------------
    Case("encode/top_k_concepts=0 means the default", "Encode", enc("vaccines", top_k_concepts=0), items=("",),
         check=at_most_concepts(N_CONCEPTS)),
    Case("encode/top_k_concepts=1", "Encode", enc("vaccines", top_k_concepts=1), items=("",),
         check=at_most_concepts(1)),
    Case("encode/top_k_concepts=uint32 max is clamped", "Encode", enc("vaccines", top_k_concepts=2**32 - 1),
         items=("",), check=at_most_concepts(N_CONCEPTS)),
    Case("encode/top_k_concepts=-1 on the wire (10-byte varint)", "Encode",
         raw(text_field(b"vaccines") + fld(2, 2, fld(2, 0, -1))), items=("",), check=at_most_concepts(N_CONCEPTS)),
    Case("encode/top_labels=uint32 max is clamped", "Encode", enc("vaccines", top_labels=2**32 - 1), items=("",),
         check=labels_at_most(N_CONCEPTS)),
    Case("encode/top_labels above top_k", "Encode", enc("vaccines", top_k_concepts=2, top_labels=50), items=("",),
         check=labels_at_most(2)),
    Case("encode/kind=QUERY truncates at the query window", "Encode", enc(LONG_WORDS, kind=pb.TEXT_KIND_QUERY),
         items=("",), check=truncated_at(QUERY_TOKENS)),
    Case("encode/kind=PASSAGE", "Encode", enc(LONG_WORDS, kind=pb.TEXT_KIND_PASSAGE), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/kind unknown (99) is a passage", "Encode", enc(LONG_WORDS, kind=99), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/kind negative (-1) is a passage", "Encode", enc(LONG_WORDS, kind=-1), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/kind int32 max is a passage", "Encode", enc(LONG_WORDS, kind=2**31 - 1), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/kind 2^40 on the wire (int32 overflow)", "Encode",
         raw(text_field(LONG_WORDS.encode()) + fld(2, 2, fld(1, 0, 1 << 40))), items=("",),
         check=truncated_at(PASSAGE_TOKENS)),
    Case("encode/skip_dense", "Encode", enc("vaccines", skip_dense=True), items=("",), check=concepts_only),
    Case("encode/skip_concepts", "Encode", enc("vaccines", skip_concepts=True), items=("",), check=dense_only),
    Case("encode/skip both", "Encode", enc("vaccines", skip_dense=True, skip_concepts=True), items=("",),
         check=no_dense_no_concepts),
    # --- Encode: malformed wire format -----------------------------------------------------------
    Case("wire/empty message", "Encode", raw(b""), items=()),
    Case("wire/random bytes seed 1", "Encode", raw(seeded_bytes(11, 64)), INVALID,
         ("malformed request", "EncodeRequest")),
    Case("wire/random bytes seed 2", "Encode", raw(seeded_bytes(12, 4096)), INVALID, ("malformed request",)),
    Case("wire/random bytes seed 3", "Encode", raw(seeded_bytes(13, 1 << 20)), INVALID, ("malformed request",)),
    Case("wire/truncated varint tag", "Encode", raw(b"\x80"), INVALID, ("malformed request",)),
    Case("wire/truncated varint length", "Encode", raw(b"\x0a\xff\xff"), INVALID, ("malformed request",)),
    Case("wire/varint longer than 10 bytes", "Encode", raw(b"\x10" + b"\xff" * 11 + b"\x01"), INVALID,
         ("malformed request",)),
    Case("wire/length beyond the message", "Encode", raw(b"\x0a\x10abc"), INVALID, ("malformed request",)),
    Case("wire/length prefix 2 GB", "Encode", raw(b"\x0a" + varint(2**31) + b"abc"), INVALID,
         ("malformed request",)),
    Case("wire/field number 0", "Encode", raw(b"\x02\x00"), INVALID, ("malformed request",)),
    Case("wire/end-group without start", "Encode", raw(b"\x0c"), INVALID, ("malformed request",)),
    Case("wire/start-group without end", "Encode", raw(b"\x0b"), INVALID, ("malformed request",)),
    Case("wire/groups nested 200 deep", "Encode", raw(b"\x1b" * 200 + b"\x1c" * 200), INVALID,
         ("malformed request",)),
    Case("wire/fixed64 with 3 bytes", "Encode", raw(b"\x19abc"), INVALID, ("malformed request",)),
    Case("wire/options holding garbage", "Encode", raw(fld(2, 2, b"\xff\xff\xff")), INVALID,
         ("malformed request",)),
    Case("wire/texts as varint (number where text expected)", "Encode", raw(fld(1, 0, 12345)), items=()),
    Case("wire/texts as fixed32", "Encode", raw(b"\x0d\x00\x00\x80\x3f"), items=()),
    Case("wire/options as varint (number where object expected)", "Encode",
         raw(text_field(b"vaccines") + fld(2, 0, 7)), items=("",)),
    Case("wire/texts holding a nested message (object where text expected)", "Encode",
         raw(text_field(fld(1, 2, b"inner") + fld(2, 0, 5))), items=("",)),
    Case("wire/duplicate options fields merge", "Encode",
         raw(text_field(b"vaccines") + fld(2, 2, fld(2, 0, 1)) + fld(2, 2, fld(4, 0, 1))), items=("",),
         check=all_of(concepts_only, at_most_concepts(1))),
    Case("wire/10,000 unknown fields", "Encode", raw(text_field(b"ok") + b"\x78\x01" * 10_000), items=("",)),
    Case("wire/largest field number", "Encode", raw(text_field(b"ok") + b"\xf8\xff\xff\xff\x0f\x01"), items=("",)),
    Case("wire/invalid UTF-8 0xff", "Encode", raw(text_field(b"\xff")), INVALID, ("bad UTF-8",)),
    Case("wire/lone high surrogate (CESU bytes)", "Encode", raw(text_field(b"\xed\xa0\x80")), INVALID,
         ("bad UTF-8",)),
    Case("wire/lone low surrogate", "Encode", raw(text_field(b"a\xed\xb0\x80b")), INVALID, ("bad UTF-8",)),
    Case("wire/surrogate pair as CESU-8", "Encode", raw(text_field(b"\xed\xa0\xbd\xed\xb8\x80")), INVALID,
         ("bad UTF-8",)),
    Case("wire/overlong NUL", "Encode", raw(text_field(b"\xc0\x80")), INVALID, ("bad UTF-8",)),
    Case("wire/truncated multibyte", "Encode", raw(text_field(b"\xe6\x97")), INVALID, ("bad UTF-8",)),
    Case("wire/code point above U+10FFFF", "Encode", raw(text_field(b"\xf4\x90\x80\x80")), INVALID,
         ("bad UTF-8",)),
    Case("wire/bad UTF-8 after good texts fails the call", "Encode",
         raw(text_field(b"good") + text_field(b"also good") + text_field(b"\xed\xa0\x80")), INVALID,
         ("bad UTF-8",)),
    # --- Rerank --------------------------------------------------------------------------------
    Case("rerank/empty query", "Rerank", rr("", ["p"]), INVALID, ("query is empty",)),
    Case("rerank/whitespace query", "Rerank", rr(" \n\t\u3000", ["p"]), INVALID, ("query is empty",)),
    Case("rerank/NUL query", "Rerank", rr("\x00", ["vaccines"]), items=("",)),
    Case("rerank/query over 1 MiB", "Rerank", rr(lambda: "q" * (MAX_BYTES + 1), ["p"]), INVALID,
         ("max_text_bytes=1048576",)),
    Case("rerank/10 MB query", "Rerank", rr(lambda: "q " * (TEN_MB // 2), ["p"]), INVALID,
         ("max_text_bytes",), timeout=30),
    Case("rerank/1 MiB query of words is cut to the query window", "Rerank", rr(lambda: MB_WORDS, ["lorem"]),
         items=("",)),
    Case("rerank/~1 MiB zero-width query with 2048 passages (tokenized once)", "Rerank",
         rr(lambda: "vaccines " + "\u200b" * ZW_QUERY_CHARS, lambda: ["vaccines work"] * MAX_TEXTS),
         items=("",) * MAX_TEXTS, timeout=60),
    Case("rerank/no passages", "Rerank", rr("q", []), items=()),
    Case("rerank/empty passages", "Rerank", rr("q", ["", " ", "\n"]), items=mixed("xxx")),
    Case("rerank/mixed passages keep order", "Rerank", rr("vaccines", ["vaccines", "", "immune", "\t"]),
         items=mixed(".x.x")),
    Case("rerank/NUL and zero-width passages", "Rerank", rr("vaccines", ["\x00", "\u200b" * 100]),
         items=("", ""), check=chunks(1, 1, truncated=False)),
    Case("rerank/scripts and emoji", "Rerank", rr("世界 😀", ["日本語", "مرحبا", "नमस्ते", "😀😀"]), items=("",) * 4),
    Case("rerank/1 MiB passage chunked, max_chunks=uint32 max", "Rerank",
         rr("lorem", lambda: [MB_WORDS], chunk_long_passages=True, max_chunks=2**32 - 1), items=("",),
         check=chunks(2, 256, truncated=True)),
    Case("rerank/1 MiB passage not chunked", "Rerank", rr("lorem", lambda: [MB_WORDS]), items=("",),
         check=chunks(1, 1, truncated=True)),
    Case("rerank/max_chunks=0 means the default", "Rerank",
         rr("lorem", [LONG_WORDS * 10], chunk_long_passages=True, max_chunks=0), items=("",), check=chunks(2, 8)),
    Case("rerank/max_chunks=1", "Rerank", rr("lorem", [LONG_WORDS * 10], chunk_long_passages=True, max_chunks=1),
         items=("",), check=chunks(1, 1, truncated=True)),
    Case("rerank/passage over 1 MiB", "Rerank", rr("q", lambda: ["ok", "p" * (MAX_BYTES + 1)]), items=mixed(".x")),
    Case("rerank/10 MB passage", "Rerank", rr("q", lambda: ["p " * (TEN_MB // 2)]), items=(INV,), timeout=30),
    Case("rerank/long single-word passage chunked", "Rerank",
         rr("a", lambda: ["a" * 500_000], chunk_long_passages=True), items=("",), check=chunks(1, 1)),
    Case("rerank/10,000 passages", "Rerank", rr("q", lambda: ["p"] * 10_000), INVALID,
         ("10000 passages", "max_texts_per_call=2048")),
    Case("rerank/2049 passages", "Rerank", rr("q", lambda: ["p"] * (MAX_TEXTS + 1)), INVALID,
         ("max_texts_per_call=2048",)),
    Case("rerank/exactly 2048 passages", "Rerank", rr("q", lambda: [f"passage {i}" for i in range(MAX_TEXTS)]),
         items=("",) * MAX_TEXTS),
    Case("rerank/too many passages and an empty query: count first", "Rerank", rr("", lambda: ["p"] * 3000),
         INVALID, ("max_texts_per_call",)),
    Case("wire/rerank random bytes", "Rerank", raw(seeded_bytes(21, 256)), INVALID, ("RerankRequest",)),
    Case("wire/rerank query with lone surrogate", "Rerank", raw(fld(1, 2, b"\xed\xa0\x80") + fld(2, 2, b"p")),
         INVALID, ("bad UTF-8",)),
    Case("wire/rerank passage with invalid UTF-8", "Rerank", raw(fld(1, 2, b"q") + fld(2, 2, b"\xc3\x28")),
         INVALID, ("bad UTF-8",)),
    Case("wire/rerank options holding garbage", "Rerank", raw(fld(1, 2, b"q") + fld(3, 2, b"\x08")), INVALID,
         ("malformed request",)),
    Case("wire/rerank empty message (empty query)", "Rerank", raw(b""), INVALID, ("query is empty",)),
    # --- Info, unknown methods -----------------------------------------------------------------
    Case("info/normal", "Info", raw(b""), check=info_ok),
    Case("info/unknown fields are ignored", "Info", raw(fld(1, 2, b"junk") + fld(7, 0, 3)), check=info_ok),
    Case("info/random bytes", "Info", raw(seeded_bytes(31, 128)), INVALID, ("InfoRequest",)),
    Case("grpc/unknown method", f"/{SERVICE}/Nope", raw(b""), grpc.StatusCode.UNIMPLEMENTED),
    Case("grpc/unknown service", "/nope.v1.Nope/Encode", raw(b""), grpc.StatusCode.UNIMPLEMENTED),
    # --- deadlines and metadata ----------------------------------------------------------------
    Case("deadline/1 ms Encode of 2048 texts", "Encode", enc_lazy(lambda: [f"t {i}" for i in range(MAX_TEXTS)]),
         grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.001),
    Case("deadline/1 ms Rerank", "Rerank", rr("q", lambda: [LONG_WORDS] * 256), grpc.StatusCode.DEADLINE_EXCEEDED,
         timeout=0.001),
    Case("metadata/20 KB header value", "Info", raw(b""), grpc.StatusCode.RESOURCE_EXHAUSTED, ("metadata",),
         metadata=AUTH + (("x-junk", "y" * 20_000),)),
    # --- auth ----------------------------------------------------------------------------------
    Case("auth/no token", "Encode", enc("x"), grpc.StatusCode.UNAUTHENTICATED, ("bearer token",), metadata=()),
    Case("auth/wrong token", "Encode", enc("x"), grpc.StatusCode.UNAUTHENTICATED, ("bearer token",),
         metadata=(("authorization", "Bearer wrong"),)),
    Case("auth/token without Bearer", "Rerank", rr("q", ["p"]), grpc.StatusCode.UNAUTHENTICATED,
         metadata=(("authorization", TOKEN),)),
    Case("auth/Bearer with empty token", "Info", raw(b""), grpc.StatusCode.UNAUTHENTICATED,
         metadata=(("authorization", "Bearer "),)),
    Case("auth/token prefix only", "Info", raw(b""), grpc.StatusCode.UNAUTHENTICATED,
         metadata=(("authorization", f"Bearer {TOKEN[:-1]}"),)),
    Case("auth/token with a suffix", "Info", raw(b""), grpc.StatusCode.UNAUTHENTICATED,
         metadata=(("authorization", f"Bearer {TOKEN}x"),)),
    Case("auth/token in another header", "Info", raw(b""), grpc.StatusCode.UNAUTHENTICATED,
         metadata=(("x-authorization", f"Bearer {TOKEN}"),)),
    Case("auth/lower-case scheme is accepted", "Info", raw(b""), metadata=(("authorization", f"bearer {TOKEN}"),),
         check=info_ok),
    Case("auth/malformed bytes without a token: auth first", "Encode", raw(b"\xff\xff"),
         grpc.StatusCode.UNAUTHENTICATED, metadata=()),
]

CATALOGUE_SIZE = len(CATALOGUE)  # quoted in docs/reports: keep >= 100


def test_catalogue_has_at_least_100_unique_entries():
    names = [c.name for c in CATALOGUE]
    assert len(set(names)) == len(names), "duplicate case names"
    assert CATALOGUE_SIZE >= 100, CATALOGUE_SIZE


# -- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue_server(tiny_models, tmp_path_factory, cfg_factory_module):
    from tests.support.inference import ServerThread, build_tiny_concept_space, tiny_server_settings

    space = build_tiny_concept_space(tmp_path_factory.mktemp("bad-input-vocab"), tiny_models)
    cfg = cfg_factory_module(**tiny_server_settings(tiny_models, space, **{"metrics.enabled": False, "auth.token": TOKEN}))
    with ServerThread(cfg) as st:
        yield st


@pytest.fixture(scope="module")
def channel(catalogue_server):
    ch = grpc.insecure_channel(catalogue_server.address, options=[("grpc.max_send_message_length", 128 << 20),
                                                                  ("grpc.max_receive_message_length", 64 << 20)])
    yield ch
    ch.close()


def _check_encode(r: pb.EncodeResponse) -> None:
    for e in r.embeddings:
        if e.HasField("error"):
            assert e.error.code and e.error.message
            assert len(e.dense) == 0 and len(e.concepts) == 0 and e.num_tokens == 0
            continue
        assert e.num_tokens >= 2
        if len(e.dense):
            assert len(e.dense) == DIM
            assert all(math.isfinite(x) for x in e.dense)
            assert abs(sum(x * x for x in e.dense) - 1.0) < 1e-3
        weights = [c.weight for c in e.concepts]
        assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
        assert list(e.top_labels) == [c.label for c in e.concepts[: len(e.top_labels)]]


def _check_rerank(r: pb.RerankResponse) -> None:
    for s in r.scores:
        if s.HasField("error"):
            assert s.error.code and s.error.message and s.chunks == 0
        else:
            assert math.isfinite(s.score) and s.chunks >= 1


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_bad_input(case: Case, channel):
    req = case.request()
    data = req if isinstance(req, bytes) else req.SerializeToString()
    path = case.method if case.method.startswith("/") else f"/{SERVICE}/{case.method}"
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    t0 = time.perf_counter()
    try:
        out, code, details = call(data, timeout=case.timeout, metadata=list(case.metadata)), OK, ""
    except grpc.RpcError as e:
        out, code, details = None, e.code(), e.details() or ""
    elapsed = time.perf_counter() - t0
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), f"{case.name}: {code} {details!r}"
    assert code == case.code, f"{case.name}: expected {case.code.name}, got {code.name}: {details[:300]!r}"
    for frag in case.details:
        assert frag in details, f"{case.name}: {frag!r} not in {details[:300]!r}"
    if code != OK:
        assert details, "a failed call must say why"
        return
    resp = RESPONSES[case.method].FromString(out)
    if isinstance(resp, pb.EncodeResponse):
        _check_encode(resp)
        got = tuple(e.error.code for e in resp.embeddings)
        if isinstance(req, pb.EncodeRequest):
            assert len(got) == len(req.texts)
    elif isinstance(resp, pb.RerankResponse):
        _check_rerank(resp)
        got = tuple(s.error.code for s in resp.scores)
        if isinstance(req, pb.RerankRequest):
            assert len(got) == len(req.passages)
    else:
        got = None
    if case.items is not None:
        assert got == case.items, f"{case.name}: per-item codes {got[:20]}... expected {case.items[:20]}..."
    if case.check is not None:
        case.check(resp)
    assert elapsed < max(case.timeout, 1.0)


def test_server_still_serving_after_the_catalogue(catalogue_server, channel):
    """Runs after the catalogue (file order): health SERVING, correct vectors, no INTERNAL."""
    h = health_pb2_grpc.HealthStub(channel)
    for svc in ("", SERVICE):
        assert h.Check(health_pb2.HealthCheckRequest(service=svc), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
    from inference_server.contract import inference_pb2_grpc as pbg

    stub = pbg.InferenceStub(channel)
    r = stub.Encode(pb.EncodeRequest(texts=["how do vaccines work", "the immune system"]), timeout=10,
                    metadata=list(AUTH))
    assert [len(e.dense) for e in r.embeddings] == [DIM, DIM]
    assert all(abs(sum(x * x for x in e.dense) - 1.0) < 1e-3 for e in r.embeddings)
    assert r.embeddings[0].dense != r.embeddings[1].dense
    s = stub.Rerank(pb.RerankRequest(query="vaccines", passages=["vaccines work"]), timeout=10, metadata=list(AUTH))
    assert math.isfinite(s.scores[0].score)
    reg = catalogue_server.server.metrics.registry
    for method in ("Encode", "Rerank", "Info"):
        for code in ("INTERNAL", "UNKNOWN"):
            assert not reg.get_sample_value("sesa_requests_total", {"method": method, "code": code})
    assert catalogue_server.server.encoder_batcher.queue_depth == 0
