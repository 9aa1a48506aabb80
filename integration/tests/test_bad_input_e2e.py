"""A catalogue of malformed documents, queries and pipeline definitions against the real node and server.

Each entry has a defined outcome, checked exactly:

* documents (one `_bulk` through `sesa-ingest`): ``encoded`` (indexed with vectors), ``missing_source``
  (indexed without vectors, the status says why: empty text with ignore_missing) or an error whose reason
  contains a given text (and the document is NOT in the index);
* searches (`ext.sesa`): a 400 whose message names the offending key, or a normal answer;
* pipeline definitions: a 400 at `PUT` time whose message names the offending option.

Afterwards the node is healthy, the server answers, and a normal document is indexed with its vectors.
The inference server's own catalogue (raw gRPC, hypothesis) is tests/inference_server/test_bad_input_catalogue.py.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from integration import schemas
from integration.tests.index_checks import count

pytestmark = pytest.mark.e2e

ENC, MISSING = "encoded", "missing_source"
NOT_STRING = "must be a string to be encoded"
TOO_LONG = "max_text_bytes"


def _doc_cases() -> list[tuple[str, object, object]]:
    """(name, body or raw JSON text, expected) — expected is ENC, MISSING or ("error", substring)."""
    cases: list[tuple[str, object, object]] = []
    bad_values = {"int": 42, "negative": -1, "float": 3.5, "huge_int": 10**30, "true": True, "false": False,
                  "list_of_str": ["a b", "c d"], "empty_list": [], "list_mixed": ["a", 1], "object": {"x": "y"},
                  "empty_object": {}, "nested_list": [["a"]]}
    for field in ("title", "text"):
        for name, value in bad_values.items():
            if field == "text" and name == "empty_list":
                continue  # covered once: an empty list is still not a string
            cases.append((f"{field}_{name}", {field: value, "text" if field == "title" else "title": "fine"},
                          ("error", NOT_STRING)))
    for name, body in {"empty": {"title": "", "text": ""}, "null_both": {"title": None, "text": None},
                       "absent_both": {"other": "x"}, "spaces": {"title": "   ", "text": "  "},
                       "tabs_newlines": {"text": "\t\n\r\n"}, "null_title_empty_text": {"title": None, "text": ""},
                       "no_fields": {}}.items():
        cases.append((name, body, MISSING))
    for code in (0x00, 0x01, 0x07, 0x08, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F, 0x85):
        cases.append((f"control_{code:02x}", {"text": f"before{chr(code)}after"}, ENC))
    cases.append(("only_controls", {"text": "\x01\x02\x03"}, ENC))
    unicode_texts = {
        "cjk": "数据分析与机器学习", "arabic": "تحليل البيانات", "hebrew_rtl": "ניתוח נתונים",
        "devanagari": "डेटा विश्लेषण", "thai": "การวิเคราะห์ข้อมูล", "hangul": "데이터 분석",
        "cyrillic": "анализ данных", "greek": "ανάλυση δεδομένων", "mixed_scripts": "数据 تحليل डेटा données",
        "emoji": "🚀🔥💡", "emoji_zwj": "👩‍🔬 works in a lab", "flags": "🇫🇷🇯🇵", "zero_width": "da\u200bta\u200c sci\u200dence",
        "rtl_marks": "\u202eevil\u202c text", "bom": "\ufeffstarts with a BOM", "combining": "e\u0301e\u0301e\u0301",
        "nbsp_only": "\u00a0\u2003\u3000", "math_symbols": "∑∫∂√∞ ≤ ≥", "private_use": "\ue000\uf8ff",
        "noncharacter": "\ufffe\uffff", "replacement": "\ufffd\ufffd", "fullwidth": "ＤＡＴＡ",
    }
    for name, text in unicode_texts.items():
        # whitespace-only texts count as missing (ignore_missing), whatever the space character
        cases.append((f"unicode_{name}", {"text": text}, MISSING if not text.strip() else ENC))
    raw = {
        "lone_high_surrogate": '{"text": "lone \\ud800 surrogate"}',
        "lone_low_surrogate": '{"text": "lone \\udc00 surrogate"}',
        "reversed_pair": '{"text": "\\udc00\\ud800"}',
        "escaped_nul": '{"text": "a\\u0000b"}',
    }
    for name, text in raw.items():
        cases.append((f"json_{name}", text, ENC))
    cases += [
        ("text_1mb", {"text": "word " * 200_000}, ENC),  # 1,000,000 bytes: truncated, encoded
        ("one_word_200k", {"text": "x" * 200_000}, ENC),
        ("text_just_over_1mib", {"text": "y" * (1_048_576 + 1)}, ("error", TOO_LONG)),
        ("text_10mb", {"text": "z" * (10 * 1_048_576)}, ("error", TOO_LONG)),
        ("title_10mb", {"title": "t" * (10 * 1_048_576), "text": "short"}, ("error", TOO_LONG)),
        ("many_lines", {"text": "line\n" * 50_000}, ENC),
        ("fields_10000", {"text": "ok", **{f"f{i}": i for i in range(10_000)}}, ("error", "Limit of total fields")),
        ("deep_object", {"text": "ok", "deep": _nest(30)}, ("error", "depth")),
    ]
    return cases


def _nest(depth: int) -> dict:
    node: dict = {"leaf": 1}
    for _ in range(depth):
        node = {"n": node}
    return node


QUERY_CASES: list[tuple[str, dict, str | None]] = [
    # (name, ext.sesa, substring of the 400 message; None = a normal answer)
    ("no_query_text", {"mode": "hybrid"}, "query_text"),
    ("query_text_null", {"query_text": None}, "query_text"),
    ("query_text_number", {"query_text": 42}, "query_text"),
    ("query_text_list", {"query_text": ["a", "b"]}, "query_text"),
    ("query_text_object", {"query_text": {"a": 1}}, "query_text"),
    ("query_text_empty", {"query_text": ""}, "query_text"),
    ("query_text_blank", {"query_text": " \t\n"}, "query_text"),
    ("query_text_10001", {"query_text": "q" * 10_001}, "query_text"),
    ("query_text_1mb", {"query_text": "q" * 1_048_576}, "query_text"),
    ("unknown_key", {"query_text": "q", "colour": "red"}, "colour"),
    ("mode_unknown", {"query_text": "q", "mode": "semantic"}, "ext.sesa.mode"),
    ("mode_number", {"query_text": "q", "mode": 1}, "ext.sesa.mode"),
    ("fusion_not_object", {"query_text": "q", "fusion": "rrf"}, "ext.sesa.fusion"),
    ("fusion_unknown_key", {"query_text": "q", "fusion": {"alpha": 1}}, "alpha"),
    ("technique_unknown", {"query_text": "q", "fusion": {"technique": "borda"}}, "technique"),
    ("weights_negative", {"query_text": "q", "fusion": {"weights": {"bm25": -1}}}, "weights.bm25"),
    ("weights_string", {"query_text": "q", "fusion": {"weights": {"dense": "high"}}}, "weights.dense"),
    ("weights_unknown_branch", {"query_text": "q", "fusion": {"weights": {"splade": 1}}}, "splade"),
    ("weights_not_object", {"query_text": "q", "fusion": {"weights": [1, 2, 3]}}, "weights"),
    ("rank_constant_zero", {"query_text": "q", "fusion": {"rank_constant": 0}}, "rank_constant"),
    ("rank_constant_huge", {"query_text": "q", "fusion": {"rank_constant": 10**9}}, "rank_constant"),
    ("rank_constant_float", {"query_text": "q", "fusion": {"rank_constant": 1.5}}, "rank_constant"),
    ("rerank_string", {"query_text": "q", "rerank": "yes"}, "ext.sesa.rerank"),
    ("rerank_top_n_zero", {"query_text": "q", "rerank": {"top_n": 0}}, "top_n"),
    ("rerank_top_n_huge", {"query_text": "q", "rerank": {"top_n": 100_000}}, "top_n"),
    ("rerank_timeout_bad", {"query_text": "q", "rerank": {"timeout": "soon"}}, "timeout"),
    ("rerank_timeout_negative", {"query_text": "q", "rerank": {"timeout": "-1s"}}, "timeout"),
    ("rerank_unknown_key", {"query_text": "q", "rerank": {"model": "x"}}, "model"),
    ("rerank_strict_string", {"query_text": "q", "rerank": {"strict": "no"}}, "strict"),
    ("rerank_weight_above_one", {"query_text": "q", "rerank": {"weight": 1.5}}, "weight"),
    ("explain_string", {"query_text": "q", "explain": "yes"}, "explain"),
    ("strict_number", {"query_text": "q", "strict": 1}, "strict"),
    # texts that are odd but legal get a normal answer
    ("control_chars", {"query_text": "a\u0000b\u0001c"}, None),
    ("emoji_only", {"query_text": "🚀🔥"}, None),
    ("mixed_scripts", {"query_text": "数据 تحليل डेटा données"}, None),
    # 5,000 words: OpenSearch's own limit on the BM25 query's clauses answers, with its reason
    ("five_thousand_words", {"query_text": "q " * 5_000}, "maxClauseCount"),
    ("max_length_few_words", {"query_text": ("w" * 999 + " ") * 10}, None),
    ("zero_width", {"query_text": "\u200b\u200bdata"}, None),
]


INGEST_PIPELINE_CASES: list[tuple[str, dict, str]] = [
    ("no_field_map", {}, "field_map"),
    ("field_map_string", {"field_map": "text"}, "field_map"),
    ("field_map_empty", {"field_map": {}}, "field_map"),
    ("field_map_target_number", {"field_map": {"text": 1}}, "field_map"),
    ("field_map_target_leading_dot", {"field_map": {"text": ".sesa"}}, "field_map"),
    ("field_map_target_underscore", {"field_map": {"text": "_sesa"}}, "field_map"),
    ("field_map_target_space", {"field_map": {"text": "se sa"}}, "field_map"),
    ("field_map_source_blank", {"field_map": {" ": "sesa"}}, "field_map"),
    ("batch_size_zero", {"field_map": {"text": "sesa"}, "batch_size": 0}, "batch_size"),
    ("batch_size_negative", {"field_map": {"text": "sesa"}, "batch_size": -5}, "batch_size"),
    ("batch_size_string", {"field_map": {"text": "sesa"}, "batch_size": "many"}, "batch_size"),
    ("batch_size_huge", {"field_map": {"text": "sesa"}, "batch_size": 10**7}, "batch_size"),
    ("timeout_bad", {"field_map": {"text": "sesa"}, "timeout": "later"}, "timeout"),
    ("timeout_zero", {"field_map": {"text": "sesa"}, "timeout": "0s"}, "timeout"),
    ("unknown_option", {"field_map": {"text": "sesa"}, "colour": "red"}, "colour"),
    ("ignore_missing_string", {"field_map": {"text": "sesa"}, "ignore_missing": "maybe"}, "ignore_missing"),
]

SEARCH_PIPELINE_CASES: list[tuple[str, str, str, dict, str]] = [
    # (name, section, processor, options, substring)
    ("window_zero", "request_processors", "sesa_query", {"window_size": 0}, "window_size"),
    ("window_huge", "request_processors", "sesa_query", {"window_size": 10**6}, "window_size"),
    ("knn_k_negative", "request_processors", "sesa_query", {"knn_k": -1}, "knn_k"),
    ("text_fields_empty", "request_processors", "sesa_query", {"text_fields": []}, "text_fields"),
    ("text_fields_bad_boost", "request_processors", "sesa_query", {"text_fields": ["title^x"]}, "text_fields"),
    ("top_k_concepts_huge", "request_processors", "sesa_query", {"top_k_concepts": 10**6}, "top_k_concepts"),
    ("cache_size_negative", "request_processors", "sesa_query", {"cache_size": -1}, "cache_size"),
    ("query_timeout_bad", "request_processors", "sesa_query", {"timeout": "forever"}, "timeout"),
    ("query_strict_string", "request_processors", "sesa_query", {"strict": "nope"}, "strict"),
    ("query_unknown", "request_processors", "sesa_query", {"colour": "red"}, "colour"),
    ("fuse_technique", "response_processors", "sesa_fuse", {"technique": "borda"}, "technique"),
    ("fuse_weights_zero", "response_processors", "sesa_fuse", {"weights": {"bm25": 0, "dense": 0, "concepts": 0}}, "weights"),
    ("fuse_weights_negative", "response_processors", "sesa_fuse", {"weights": {"bm25": -1}}, "weights"),
    ("fuse_rank_constant", "response_processors", "sesa_fuse", {"rank_constant": 0}, "rank_constant"),
    ("fuse_min_range", "response_processors", "sesa_fuse", {"min_range": -0.5}, "min_range"),
    ("rerank_top_n", "response_processors", "sesa_rerank", {"top_n": 0}, "top_n"),
    ("rerank_timeout", "response_processors", "sesa_rerank", {"timeout": "x"}, "timeout"),
    ("rerank_text_fields", "response_processors", "sesa_rerank", {"text_fields": "text"}, "text_fields"),
    ("rerank_weight", "response_processors", "sesa_rerank", {"rerank_weight": -0.2}, "rerank_weight"),
]


def _error_text(info) -> str:
    return json.dumps(info) if not isinstance(info, str) else info


@pytest.fixture(scope="module")
def index(os_client):
    name = f"sesa-bad-input-e2e-{uuid.uuid4().hex[:8]}"
    os_client.indices.create(index=name)
    yield name
    os_client.indices.delete(index=name, ignore_unavailable=True)


def test_malformed_documents_each_get_a_defined_outcome(os_client, index):
    cases = _doc_cases()
    lines = []
    for name, body, _ in cases:
        lines.append(json.dumps({"index": {"_index": index, "_id": name}}))
        lines.append(body if isinstance(body, str) else json.dumps(body))
    res = os_client.bulk(body="\n".join(lines) + "\n", params={"request_timeout": 300})
    outcomes = {item["index"]["_id"]: item["index"] for item in res["items"]}
    assert len(outcomes) == len(cases)
    status_field = schemas.field_names()["status"]
    dense = schemas.field_names()["dense"]
    wrong = []
    for name, _, expected in cases:
        op = outcomes[name]
        if isinstance(expected, tuple):
            reason = _error_text(op.get("error", ""))
            if not op.get("error") or expected[1] not in reason:
                wrong.append(f"{name}: expected an error with {expected[1]!r}, got {op.get('status')} {reason[:200]}")
            continue
        if op.get("error"):
            wrong.append(f"{name}: expected {expected}, got error {_error_text(op['error'])[:200]}")
            continue
        src = os_client.get(index=index, id=name, params={"_source_includes": f"{status_field},{dense}"})["_source"]
        if src.get(status_field) != expected or (expected == ENC) != bool(src.get(dense)):
            wrong.append(f"{name}: expected {expected}, stored status {src.get(status_field)}, "
                         f"vector {'yes' if src.get(dense) else 'no'}")
    assert not wrong, "\n".join(wrong)
    failed = [name for name, _, e in cases if isinstance(e, tuple)]
    assert count(os_client, index, {"ids": {"values": failed}}) == 0, "a failed document must not be indexed"


def test_a_huge_bulk_is_batched_and_fully_indexed(os_client, index):
    lines = []
    n = 1000
    for i in range(n):
        lines += [json.dumps({"index": {"_index": index, "_id": f"bulk-{i}"}}), json.dumps({"text": f"document {i}"})]
    res = os_client.bulk(body="\n".join(lines) + "\n", params={"request_timeout": 600})
    assert not res["errors"], [i for i in res["items"] if i["index"].get("error")][:3]
    dense = schemas.field_names()["dense"]
    ids = [f"bulk-{i}" for i in range(n)]
    assert count(os_client, index, {"bool": {"filter": [{"ids": {"values": ids}},
                                                        {"exists": {"field": dense}}]}}) == n


@pytest.mark.parametrize("name,ext,message", QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
def test_malformed_queries_are_a_400_naming_the_key(os_client, index, name, ext, message):
    from opensearchpy.exceptions import RequestError

    pipeline = schemas.conventions()["default_search_pipeline"]
    body = {"size": 3, "ext": {"sesa": ext}}
    if message is None:
        res = os_client.search(index=index, body=body, params={"search_pipeline": pipeline})
        assert "sesa" in res.get("ext", {})
        return
    with pytest.raises(RequestError) as err:
        os_client.search(index=index, body=body, params={"search_pipeline": pipeline})
    assert err.value.status_code == 400
    assert message in _error_text(err.value.info), _error_text(err.value.info)[:300]


@pytest.mark.parametrize("name,options,message", INGEST_PIPELINE_CASES, ids=[c[0] for c in INGEST_PIPELINE_CASES])
def test_malformed_ingest_pipelines_are_rejected_at_put(os_client, name, options, message):
    from opensearchpy.exceptions import RequestError

    with pytest.raises(RequestError) as err:
        os_client.ingest.put_pipeline(id=f"sesa-bad-{name}", body={"processors": [{"sesa_encode": options}]})
    assert message in _error_text(err.value.info), _error_text(err.value.info)[:300]


@pytest.mark.parametrize("name,section,processor,options,message", SEARCH_PIPELINE_CASES,
                         ids=[c[0] for c in SEARCH_PIPELINE_CASES])
def test_malformed_search_pipelines_are_rejected_at_put(os_client, name, section, processor, options, message):
    from opensearchpy.exceptions import RequestError

    body = copy.deepcopy(schemas.load_json("search-pipeline.json"))
    for proc in body[section]:
        if processor in proc:
            proc[processor].update(options)
    with pytest.raises(RequestError) as err:
        os_client.transport.perform_request("PUT", f"/_search/pipeline/sesa-bad-{name}", body=body)
    assert message in _error_text(err.value.info), _error_text(err.value.info)[:300]


def test_catalogue_size_and_everything_still_up(os_client, stack, index):
    from integration.inference import InferenceClient

    total = len(_doc_cases()) + 1 + len(QUERY_CASES) + len(INGEST_PIPELINE_CASES) + len(SEARCH_PIPELINE_CASES)
    assert total >= 100, total
    print(f"bad-input catalogue (node side): {total} entries")
    assert os_client.cluster.health()["status"] in ("green", "yellow")
    with InferenceClient(stack.server_address) as client:
        assert client.info().models
    os_client.index(index=index, id="after", body={"text": "a normal document after the catalogue"},
                    params={"refresh": "true"})
    src = os_client.get(index=index, id="after")["_source"]
    assert src[schemas.field_names()["status"]] == ENC and src[schemas.field_names()["dense"]]
