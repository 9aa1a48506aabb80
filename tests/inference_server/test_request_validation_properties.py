"""Property-based tests (hypothesis) of the server's request validation.

The pure checks in ``inference_server.service`` (texts, query, batch size, options, request
bytes) are exercised with arbitrary unicode (surrogates, controls, format and whitespace
characters included) and arbitrary limits and option values: they either accept an input or
answer with the defined INVALID_ARGUMENT, never with another exception. A last property runs
the same oracle through a real in-process server (fake models, real tokenizer, real channel).
"""

from __future__ import annotations

import functools

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_server.config import ConceptsConfig, RerankConfig, load_config
from inference_server.contract import inference_pb2 as pb
from inference_server.contract import inference_pb2_grpc as pbg
from inference_server.service import (
    CallError,
    MalformedRequest,
    check_query,
    check_text,
    encode_options,
    lenient_deserializer,
    rerank_options,
    validate_texts,
)
from inference_server.tokenization import TextTokenizer
from tests.support.inference import ServerThread, builtin_tokenizer, fake_runtimes

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point (surrogates too), with the troublesome classes drawn often.
any_char = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),  # lone surrogates (only representable in Python str)
    st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co", "Cn"]),
    st.sampled_from(list(" \t\n\r\x00\x0b\x0c\x85\xa0\u200b\u200d\u202e\ufeff\ufffd\u3000")),
)
texts_any = st.text(any_char, max_size=64)
# Representable on the wire (proto3 strings are UTF-8): no surrogates.
wire_char = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Mn", "Co"]),
    st.sampled_from(list(" \t\n\x00\u200b\ufeff日😀ع")),
)
texts_wire = st.text(wire_char, max_size=40)
uint32 = st.integers(0, 2**32 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def oracle(text: str, max_text_bytes: int) -> bool:
    """The documented rule: a text is accepted iff not blank and within max_text_bytes."""
    return bool(text.strip()) and utf8_len(text) <= max_text_bytes


# -- texts ------------------------------------------------------------------------------------


@SETTINGS
@given(texts=st.lists(texts_any, max_size=20), max_texts=st.integers(1, 30), max_bytes=st.integers(1, 300))
def test_validate_texts_accepts_or_rejects_each_text_in_order(texts, max_texts, max_bytes):
    try:
        errors = validate_texts(texts, max_texts, max_bytes)
    except CallError as e:
        assert len(texts) > max_texts
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"max_texts_per_call={max_texts}" in e.message and str(len(texts)) in e.message
        return
    assert len(texts) <= max_texts
    assert len(errors) == len(texts)
    for text, err in zip(texts, errors):
        if oracle(text, max_bytes):
            assert err is None
        else:
            assert err is not None and err.code == "INVALID_ARGUMENT" and err.message
            assert ("max_text_bytes" in err.message) == bool(text.strip())


@SETTINGS
@given(texts=st.lists(texts_any, min_size=1, max_size=12), data=st.data())
def test_per_item_results_follow_their_text_under_permutation(texts, data):
    perm = data.draw(st.permutations(range(len(texts))))
    errs = validate_texts(texts, 100, 50)
    errs_p = validate_texts([texts[i] for i in perm], 100, 50)
    assert [errs[i] for i in perm] == errs_p
    assert errs == [check_text(t, 50) for t in texts]


@SETTINGS
@given(text=texts_any, max_bytes=st.integers(1, 400), repeat=st.integers(1, 50))
def test_byte_limit_counts_utf8_bytes_not_characters(text, max_bytes, repeat):
    t = text * repeat  # long enough to cross the fast paths of the length check
    err = check_text(t, max_bytes)
    assert (err is None) == oracle(t, max_bytes)


# -- query ------------------------------------------------------------------------------------


@SETTINGS
@given(query=texts_any, max_bytes=st.integers(1, 200))
def test_check_query_raises_only_invalid_argument(query, max_bytes):
    try:
        check_query(query, max_bytes)
    except CallError as e:
        assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.message
        assert not oracle(query, max_bytes)
    else:
        assert oracle(query, max_bytes)


# -- options ----------------------------------------------------------------------------------


@st.composite
def concepts_configs(draw):
    max_top_k = draw(st.integers(1, 100_000))
    return ConceptsConfig(default_top_k=draw(st.integers(1, min(1024, max_top_k))), max_top_k=max_top_k,
                          default_top_labels=draw(st.integers(0, 1024)))


@SETTINGS
@given(kind=int32, top_k=uint32, top_labels=uint32, skip_dense=st.booleans(), skip_concepts=st.booleans(),
       has_concepts=st.booleans(), ccfg=concepts_configs())
def test_encode_options_are_clamped_never_rejected(kind, top_k, top_labels, skip_dense, skip_concepts, has_concepts,
                                                   ccfg):
    opts = pb.EncodeOptions(kind=kind, top_k_concepts=top_k, top_labels=top_labels, skip_dense=skip_dense,
                            skip_concepts=skip_concepts)
    query, k, labels = encode_options(opts, has_concepts, ccfg)
    assert query == (kind == pb.TEXT_KIND_QUERY)  # unknown kinds are passages
    if not has_concepts or skip_concepts:
        assert k == 0
    else:
        assert 1 <= k <= ccfg.max_top_k
        assert k == min(top_k or ccfg.default_top_k, ccfg.max_top_k)
    assert 0 <= labels <= k


@SETTINGS
@given(chunk=st.booleans(), max_chunks=uint32, default_max_chunks=st.integers(1, 256),
       chunk_by_default=st.booleans())
def test_rerank_options_are_clamped(chunk, max_chunks, default_max_chunks, chunk_by_default):
    rcfg = RerankConfig(default_max_chunks=default_max_chunks, chunk_by_default=chunk_by_default)
    c, n = rerank_options(pb.RerankOptions(chunk_long_passages=chunk, max_chunks=max_chunks), rcfg)
    assert c == (chunk or chunk_by_default)
    assert 1 <= n <= 256


# -- request bytes ----------------------------------------------------------------------------


@SETTINGS
@given(data=st.binary(max_size=300), cls=st.sampled_from([pb.EncodeRequest, pb.RerankRequest, pb.InfoRequest]))
def test_lenient_deserializer_never_raises(data, cls):
    msg = lenient_deserializer(cls)(data)
    if isinstance(msg, MalformedRequest):
        err = msg.call_error()
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT
        assert cls.DESCRIPTOR.full_name in err.message and "malformed request" in err.message
    else:
        assert isinstance(msg, cls)


@SETTINGS
@given(texts=st.lists(texts_wire, max_size=8), kind=int32, top_k=uint32, junk=st.binary(max_size=20))
def test_well_formed_requests_round_trip_and_a_bad_utf8_text_is_malformed(texts, kind, top_k, junk):
    req = pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(kind=kind, top_k_concepts=top_k))
    data = req.SerializeToString()
    assert lenient_deserializer(pb.EncodeRequest)(data) == req
    bad = data + b"\x0a" + bytes([len(junk) + 3]) + junk + b"\xed\xa0\x80"  # a lone surrogate, CESU-8
    assert isinstance(lenient_deserializer(pb.EncodeRequest)(bad), MalformedRequest)


# -- tokenization used by Rerank --------------------------------------------------------------


@functools.cache
def _tokenizer() -> TextTokenizer:
    return TextTokenizer(builtin_tokenizer(), 512)


@SETTINGS
@given(query=st.text(wire_char, max_size=30), passages=st.lists(st.text(wire_char, max_size=200), min_size=1,
                                                                 max_size=5),
       max_tokens=st.sampled_from([64, 128, 256]))
def test_encode_pairs_matches_direct_pair_encoding(query, passages, max_tokens):
    """The query is tokenized once and joined by the post-processor: same ids as encoding pairs."""
    tok = _tokenizer()
    direct = tok._pair_tok(max_tokens).encode_batch([(query, p) for p in passages])
    ours = tok.encode_pairs([query] * len(passages), passages, max_tokens)
    for d, o in zip(direct, ours):
        assert o.ids.tolist() == list(d.ids) and o.type_ids.tolist() == list(d.type_ids)
        assert o.truncated == (len(d.overflowing) > 0)


@functools.cache
def _reranker(max_tokens: int):
    cfg = load_config(overrides={"rerank.max_tokens": max_tokens, "models.concept_space": "none",
                                 "auth.token_env": None}, environ={})
    return fake_runtimes(cfg, with_concepts=False).reranker


@SETTINGS
@given(query=st.text(wire_char, min_size=1, max_size=400), passage=st.text(wire_char, max_size=400),
       max_tokens=st.integers(16, 40), chunk=st.booleans(), max_chunks=st.integers(1, 8))
def test_rerank_plan_fits_any_query_into_a_small_window(query, passage, max_tokens, chunk, max_chunks):
    """rerank.max_tokens may be as small as 16: a long query is cut so the passage keeps >= 8 tokens."""
    rt = _reranker(max_tokens)
    plans = rt.plan(query, [passage], chunk=chunk, max_chunks=max_chunks)
    assert len(plans) == 1 and 1 <= len(plans[0].pairs) <= max_chunks
    assert all(s.num_tokens <= max_tokens for s in plans[0].pairs)


# -- the same oracle through a real server ------------------------------------------------------


@pytest.fixture(scope="module")
def validation_stub():
    cfg = load_config(overrides={"port": 0, "metrics.enabled": False, "models.concept_space": "none",
                                 "auth.token_env": None, "limits.max_texts_per_call": 16,
                                 "limits.max_text_bytes": 64}, environ={})
    with ServerThread(cfg, fake_runtimes(cfg)) as st_, grpc.insecure_channel(st_.address) as ch:
        yield pbg.InferenceStub(ch)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(texts=st.lists(texts_wire, max_size=20), kind=int32, top_k=uint32)
def test_server_answers_every_text_by_the_oracle(validation_stub, texts, kind, top_k):
    req = pb.EncodeRequest(texts=texts, options=pb.EncodeOptions(kind=kind, top_k_concepts=top_k))
    try:
        r = validation_stub.Encode(req, timeout=10)
    except grpc.RpcError as e:
        assert len(texts) > 16 and e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_texts_per_call=16" in e.details()
        return
    assert len(texts) <= 16 and len(r.embeddings) == len(texts)
    for text, emb in zip(texts, r.embeddings):
        if oracle(text, 64):
            assert not emb.HasField("error") and len(emb.dense) == 16 and emb.num_tokens >= 2
        else:
            assert emb.error.code == "INVALID_ARGUMENT" and emb.error.message and len(emb.dense) == 0
