"""Checks the ingest end-to-end tests share: a dataset folder or a clear skip/fail, every document of an
index carrying its four SESA fields, and stored vectors equal to what the server's Encode returns now.

Counting checks run as queries (cheap on any corpus size); the vector comparison fetches the documents it
compares, so large corpora compare a fixed-seed sample.
"""

from __future__ import annotations

import itertools
import math
import os
import random

import pytest

from integration import schemas

ENCODE_BATCH = 16


def require_dataset(name: str):
    """The shared dataset ``name``, or a skip (a failure under SESA_REQUIRE_E2E) that says where it looked."""
    from integration.cluster.paths import shared_data_dir
    from ir.beir import Dataset

    path = shared_data_dir() / name
    if not (path / "corpus.jsonl").is_file() and not (path / "corpus.jsonl.gz").is_file():
        message = f"the {name} dataset is not at {path} (set SESA_DATA_DIR to the shared data folder)"
        if os.environ.get("SESA_REQUIRE_E2E", "") not in ("", "0", "false"):
            pytest.fail(message)
        pytest.skip(message)
    return Dataset(path)


def count(client, index: str, query: dict | None = None) -> int:
    client.indices.refresh(index=index)
    return client.count(index=index, body={"query": query or {"match_all": {}}})["count"]


def assert_no_document_without_vectors(client, index: str, prefix: str | None = None) -> None:
    """Vectors are missing only where the pipeline says why (empty text with ignore_missing); ``prefix``: the
    target prefix (default: the pipeline's; a sesa_text field's is ``schemas.text_field_prefix(field)``)."""
    f = schemas.field_names(prefix)
    missing = schemas.conventions()["status_values"]["missing_source"]
    no_vectors = {"bool": {"must_not": [{"exists": {"field": f["dense"]}}, {"term": {f["status"]: missing}}]}}
    assert count(client, index, no_vectors) == 0, "no document may be indexed without its vectors"


def assert_every_document_has_the_sesa_fields(client, index: str, expected_total: int,
                                              prefix: str | None = None) -> None:
    """All documents are there, and every encoded one carries dense, concepts, labels and model."""
    f = schemas.field_names(prefix)
    encoded = schemas.conventions()["status_values"]["encoded"]
    assert count(client, index) == expected_total
    assert_no_document_without_vectors(client, index, prefix)
    n_encoded = count(client, index, {"term": {f["status"]: encoded}})
    assert n_encoded > 0
    for field in (f["dense"], f["concept_labels"], f"{f['model']}.dense", f"{f['model']}.concepts"):
        with_field = count(client, index, {"bool": {"filter": [{"term": {f["status"]: encoded}},
                                                              {"exists": {"field": field}}]}})
        assert with_field == n_encoded, f"{n_encoded - with_field} encoded documents lack {field}"
    # rank_features answer no `exists` query: read the weights of every encoded document
    from opensearchpy.helpers import scan

    without = [hit["_id"] for hit in scan(client, index=index, size=1000, _source=[f["concepts"]],
                                          query={"query": {"term": {f["status"]: encoded}}})
               if not any(w > 0 for w in (hit["_source"].get(f["concepts"]) or {}).values())]
    assert not without, f"{len(without)} encoded documents have no concept weights, e.g. {without[:5]}"


def fetch_sources(client, index: str, ids: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for start in range(0, len(ids), 500):
        res = client.mget(index=index, body={"ids": ids[start:start + 500]})
        out.update({d["_id"]: d["_source"] for d in res["docs"] if d.get("found")})
    return out


def cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def sparse_cosine(a: dict, b: dict) -> float:
    dot = sum(w * b.get(k, 0.0) for k, w in a.items())
    na, nb = math.sqrt(sum(w * w for w in a.values())), math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def assert_vectors_equal_encode(client, index: str, dataset, server_address: str, sample: int | None = None,
                                seed: int = 13, prefix: str | None = None, text_of=None,
                                chunking: dict | None | str = schemas.SHIPPED) -> int:
    """Stored dense vectors, concept weights and model ids equal what Encode returns for the same text
    (all documents, or ``sample`` of them picked with ``seed``). Returns how many were compared. ``text_of``: what
    was encoded for a document (default: the pipeline's title and text joined). ``chunking``: the option it was
    encoded with (``schemas.SHIPPED``: the shipped pipeline's; None: none), so that the stored single vector is compared
    with the first window's and the concepts with the pooled ones."""
    from integration.inference import InferenceClient, model_ref, pb

    f = schemas.field_names(prefix)
    processor = schemas.encode_processor()
    separator = processor["separator"]
    if chunking == schemas.SHIPPED:
        chunking = processor.get("chunking")
    options = {} if chunking is None else {"chunking": pb.Chunking(**{k: int(v) for k, v in chunking.items()})}
    top_k = int(processor.get("top_k_concepts", 0))  # the concepts a document keeps (the pipeline's)
    text_of = text_of or (lambda d: d.joined(separator))
    docs = [d for d in dataset.iter_corpus() if text_of(d)]
    if sample is not None and sample < len(docs):
        docs = random.Random(seed).sample(docs, sample)
    stored = fetch_sources(client, index, [d.id for d in docs])
    worst_dense, worst_concepts = 1.0, 1.0
    with InferenceClient(server_address) as inference:
        dense_min, concepts_min = _tolerances(inference)
        for start in range(0, len(docs), ENCODE_BATCH):
            batch = docs[start:start + ENCODE_BATCH]
            response = inference.encode([text_of(d) for d in batch], top_k_concepts=top_k, **options)
            models = {"dense": model_ref(response.dense_model), "concepts": model_ref(response.concept_model)}
            for doc, emb in zip(batch, response.embeddings):
                assert not emb.HasField("error"), (doc.id, emb.error)
                src = stored[doc.id]
                fresh_dense = list(emb.windows[0].dense) if options else list(emb.dense)
                cos = cosine(src[f["dense"]], fresh_dense)
                worst_dense = min(worst_dense, cos)
                assert cos > dense_min, f"document {doc.id}: cosine {cos:.6f} between stored and fresh dense vector"
                fresh = {c.key: c.weight for c in emb.concepts if c.weight > 0}
                worst_concepts = min(worst_concepts, sparse_cosine(src[f["concepts"]], fresh))
                assert src[f["model"]] == models, doc.id
    # concept weights may swap at the top-k cut-off under batch-dependent noise, never more
    assert worst_concepts > concepts_min, f"worst concept-vector cosine {worst_concepts:.5f}"
    return len(docs)


def _code_points(text: str) -> int:
    return len(text)  # Python strings count code points, as the server's window offsets do


def assert_every_document_has_all_its_windows(client, index: str, dataset, server_address: str, chunking: dict,
                                              sample: int = 100, seed: int = 13, prefix: str | None = None) -> int:
    """With `chunking` (sesa_encode's option) every indexed document carries every window of its text, never a part
    (a text of one window stores none: its single vector is that window, with its coverage): for all of them (read
    back), windows in text order, the first at 0, each next one starting inside or at the end of
    the one before (no gap), the last at the text's end unless the coverage says `max_windows` cut it, one vector per
    window of the single vector's dimension, and the single vector is the first window's. For `sample` of them
    (picked with `seed`) the windows are exactly what the server's chunked Encode of the same text returns now:
    the same spans and coverage, vectors and pooled concept weights equal up to the encoder's tolerance. Returns how
    many documents were checked."""
    from opensearchpy.helpers import scan

    from integration.inference import InferenceClient, pb

    f = schemas.field_names(prefix)
    processor = schemas.encode_processor()
    texts = {d.id: d.joined(processor["separator"]) for d in dataset.iter_corpus()}
    top_k = int(processor.get("top_k_concepts", 0))  # the concepts a document keeps (the pipeline's)
    missing = schemas.conventions()["status_values"]["missing_source"]
    max_windows = int(chunking.get("max_windows", 64))
    stored: dict[str, dict] = {}
    for hit in scan(client, index=index, size=500,
                    _source=[f["chunks"], f["coverage"], f["dense"], f["status"], f["concepts"]]):
        src = hit["_source"]
        if src.get(f["status"]) == missing:
            continue
        doc, text = hit["_id"], texts[hit["_id"]]
        windows = src.get(f["chunks"]) or []
        coverage = src.get(f["coverage"])
        assert coverage is not None, f"document {doc} was indexed without its coverage (not chunked?)"
        if not windows:  # one window: the single vector is the window
            assert src.get(f["dense"]), f"document {doc} was indexed without its vectors"
            stored[doc] = src
            continue
        spans = [(w["start"], w["end"]) for w in windows]
        assert spans[0][0] == 0, (doc, spans)
        for (s0, e0), (s1, e1) in itertools.pairwise(spans):
            assert s0 < s1 <= e0 < e1, f"document {doc}: windows {spans} leave a gap or go back"
        if coverage >= 1.0:
            assert spans[-1][1] == _code_points(text), f"document {doc}: the windows {spans} stop before the text's end"
        else:
            assert len(windows) == max_windows, f"document {doc}: coverage {coverage} with {len(windows)} windows"
        dim = len(src[f["dense"]])
        assert all(len(w["dense"]) == dim for w in windows), f"document {doc}: a window without its vector"
        assert src[f["dense"]] == pytest.approx(windows[0]["dense"], abs=1e-6), \
            f"document {doc}: the single vector is not the first window's"
        stored[doc] = src
    picked = random.Random(seed).sample(sorted(stored), min(sample, len(stored)))
    if not picked:
        return len(stored)
    options = pb.Chunking(window_tokens=int(chunking.get("window_tokens", 0)),
                          overlap_tokens=int(chunking.get("overlap_tokens", 32)), max_windows=max_windows)
    with InferenceClient(server_address) as inference:
        dense_min, concepts_min = _tolerances(inference)
        worst_concepts = 1.0
        for start in range(0, len(picked), ENCODE_BATCH):
            batch = picked[start:start + ENCODE_BATCH]
            response = inference.encode([texts[d] for d in batch], chunking=options, top_k_concepts=top_k)
            for doc, emb in zip(batch, response.embeddings):
                assert not emb.HasField("error"), (doc, emb.error)
                src = stored[doc]
                fresh = [(w.start_char, w.end_char) for w in emb.windows]
                kept = src.get(f["chunks"]) or []
                if len(fresh) == 1:  # one window: none stored, the single vector is it
                    assert not kept, f"document {doc}: a text of one window stored {len(kept)} chunks"
                    kept = [{"start": fresh[0][0], "end": fresh[0][1], "dense": src[f["dense"]]}]
                assert [(w["start"], w["end"]) for w in kept] == fresh, f"document {doc}: windows differ"
                assert src[f["coverage"]] == pytest.approx(emb.coverage, abs=1e-6), doc
                for w, fw in zip(kept, emb.windows):
                    cos = cosine(w["dense"], list(fw.dense))
                    assert cos > dense_min, f"document {doc}: cosine {cos:.6f} between a stored and a fresh window"
                weights = {c.key: c.weight for c in emb.concepts if c.weight > 0}
                worst_concepts = min(worst_concepts, sparse_cosine(src[f["concepts"]], weights))
    assert worst_concepts > concepts_min, f"worst pooled concept-vector cosine {worst_concepts:.5f}"
    return len(stored)


def _tolerances(inference) -> tuple[float, float]:
    """(dense, concepts) cosine floors for "the same vector". fp32 is batch-independent up to float noise. The
    other CPU paths are too by construction (int8 runs one sequence per call; OpenVINO bf16 computes each row on its
    own: alone vs batched cosine >= 0.99999), but their vectors move further with the kernels chosen for a shape, so
    they get the looser floor. Either floor is far above what another document's vector or another model gives
    (< 0.9); docs/model-cards/all-minilm-l6-v2-encoder.md has the measured figures."""
    precision = next((m.precision for m in inference.info().models if m.role == "encoder"), "fp32")
    return (0.9999, 0.99) if precision in ("fp32", "") else (0.98, 0.95)
