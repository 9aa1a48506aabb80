"""The ESCO skill-space trainer (model_building.training.skills_training): its data readers, the metric, and
that fitting the rows moves texts' annotated skills up and keeps the best dev epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_building.training.skills_training import (
    DEV_FOLDS,
    SkillsTrainConfig,
    esco_examples,
    fold,
    fold_of,
    postings_set,
    rp_at,
    skillskape_set,
    train_rows,
)


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def esco(tmp_path):
    _write_jsonl(tmp_path / "skills.jsonl", [
        {"id": "s:a", "label": "repair engines", "aliases": ["fix engines", "repair engines", "overhaul"],
         "description": "Repair  engine\nproblems."},
        {"id": "s:b", "label": "overhaul boats", "aliases": ["overhaul"], "description": ""},
        {"id": "s:unknown", "label": "not in the package", "aliases": [], "description": "x"},
    ])
    _write_jsonl(tmp_path / "skillskape" / "dev.jsonl", [
        {"text": "You will fix our engines.", "labels": ["repair engines"], "ids": ["s:a"]},
        {"text": "Nothing we serve.", "labels": ["?"], "ids": ["s:unknown"]},
    ])
    _write_jsonl(tmp_path / "postings" / "corpus.jsonl", [{"_id": "s:a", "title": "repair engines", "text": ""},
                                                          {"_id": "s:b", "title": "overhaul boats", "text": ""}])
    _write_jsonl(tmp_path / "postings" / "queries.jsonl", [{"_id": "q1", "text": "boat and engine work"},
                                                           {"_id": "q2", "text": "no skill"}])
    (tmp_path / "postings" / "qrels").mkdir()
    (tmp_path / "postings" / "qrels" / "dev_x.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\ts:a\t1\nq1\ts:b\t1\nq2\ts:a\t0\n", encoding="utf-8")
    return tmp_path


def test_esco_examples_label_aliases_and_description_point_at_their_skill(esco):
    got = {(e.source, e.text): e.skills for e in esco_examples(esco, {"s:a": 0, "s:b": 1})}
    assert got[("label", "repair engines")] == (0,)
    assert got[("alias", "fix engines")] == (0,)
    assert got[("description", "Repair engine problems.")] == (0,), "whitespace folded"
    assert got[("alias", "overhaul")] == (0, 1), "an alias of two skills names both"
    assert ("alias", "repair engines") not in got, "an alias that repeats the label is not a second example"
    assert not any("not in the package" in text for _, text in got), "skills the package lacks are left out"
    assert ("description", "") not in got


def test_labelled_sets_keep_only_texts_with_a_served_skill(esco):
    ss = skillskape_set(esco, "dev", {"s:a": 0})
    assert ss.texts == ["You will fix our engines."] and ss.skills == [frozenset({0})]
    ps = postings_set(esco, "dev_x", {"s:a": 0, "s:b": 1})
    assert ps.texts == ["boat and engine work"] and ps.skills == [frozenset({0, 1})], "grade 0 is not relevant"


def test_rp_at_is_the_literatures_r_precision():
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.9]])
    # text 0: top-2 = {0, 1}, relevant {0, 2} -> 1/2; text 1: top-2 = {3, 2}, relevant {3} -> 1/min(2, 1) = 1
    assert rp_at(scores, [frozenset({0, 2}), frozenset({3})], k=2) == pytest.approx(0.75)
    # no more concepts than k: every concept is in the top-k
    assert rp_at(np.array([[0.1, 0.9]]), [frozenset({0, 1})], k=5) == pytest.approx(1.0)


def test_training_moves_the_annotated_skills_up_and_keeps_the_best_dev_epoch():
    rng = np.random.default_rng(0)
    n_concepts, dim = 40, 16
    truth = rng.normal(size=(n_concepts, dim))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    anchor = truth + rng.normal(scale=1.2, size=truth.shape)  # zero-shot rows: far from what texts say
    anchor /= np.linalg.norm(anchor, axis=1, keepdims=True)

    def texts(n):
        labels = rng.integers(0, n_concepts, size=n)
        x = truth[labels] + rng.normal(scale=0.3, size=(n, dim))
        return x / np.linalg.norm(x, axis=1, keepdims=True), [frozenset({int(c)}) for c in labels]

    x, y = texts(800)
    dev_x, dev_y = texts(200)
    seen = []

    def dev(epoch, w):
        seen.append(epoch)
        return rp_at(dev_x @ w.T, dev_y, k=1)

    cfg = SkillsTrainConfig(epochs=3, lr=0.05, scale=10.0, anchor=0.0, batch_size=100)
    w, history = train_rows(anchor, x, [sorted(s) for s in y], np.ones(len(y), np.float32), cfg, dev)
    assert seen == [0, 1, 2, 3] and [h["epoch"] for h in history] == [0, 1, 2, 3]
    before, after = history[0]["dev"], max(h["dev"] for h in history)
    assert after > before + 0.2, history
    assert rp_at(dev_x @ w.T, dev_y, k=1) == pytest.approx(after), "the best epoch's rows come back"

    # keep_last: the epoch count was chosen beforehand (cross-fitting), the last epoch's rows come back whatever dev says
    last, _ = train_rows(anchor, x, [sorted(s) for s in y], np.ones(len(y), np.float32), cfg,
                         lambda e, w: -float(e), keep_last=True)
    assert not np.allclose(last, anchor) and rp_at(dev_x @ last.T, dev_y, k=1) == pytest.approx(history[-1]["dev"])

    # a strong anchor keeps the rows where they started
    held, _ = train_rows(anchor, x, [sorted(s) for s in y], np.ones(len(y), np.float32),
                         SkillsTrainConfig(epochs=1, lr=0.01, scale=10.0, anchor=1e4, batch_size=100),
                         lambda e, w: float(e))
    assert np.abs(held - anchor).max() < 0.05


def test_the_pipeline_writes_a_servable_trained_space_with_its_measurements(esco, tmp_path):
    """Fake encoder (no model), a two-skill vocabulary: the artifact loads in the server's ConceptHead, records the
    recipe and the data, measures dev and test sets apart and never trains on a test split."""
    from inference_server.config import load_config
    from inference_server.runtime.concept_head import ConceptHead
    from model_building.concept_packs.vocabulary import VocabEntry
    from model_building.training.skills_training import train_skills
    from tests.support.inference import fake_runtimes

    (esco / "skillskape" / "train.jsonl").write_text(
        "".join(json.dumps({"text": t, "labels": [], "ids": [i]}) + "\n" for t, i in
                [("We fix engines daily.", "s:a"), ("Boat overhaul experience.", "s:b")] * 5), encoding="utf-8")
    (esco / "postings" / "qrels" / "test_x.tsv").write_text("query-id\tcorpus-id\tscore\nq2\ts:b\t1\n", encoding="utf-8")
    encoder = load_config(overrides={"models.concept_space": "none"}, environ={})
    encoder = fake_runtimes(encoder, dim=16, with_reranker=False, with_concepts=False).encoder
    entries = [VocabEntry(id="s:a", label="repair engines", key="esco-a", text="repair engines fix engines"),
               VocabEntry(id="s:b", label="overhaul boats", key="esco-b", text="overhaul boats")]
    cfg = SkillsTrainConfig(epochs=2, batch_size=4, top_k=2)
    m = train_skills(esco, tmp_path / "space", cfg, name="t", cache_dir=tmp_path / "cache", show_progress=False,
                     encoder=encoder, vocabulary=(entries, {"source": "test"}))
    head = ConceptHead.load(tmp_path / "space")
    assert head.keys == ["esco-a", "esco-b"] and head.labels == ["repair engines", "overhaul boats"]
    assert m["kind"] == "trained" and m["version"].startswith("esco-")
    other = train_skills(esco, tmp_path / "other", SkillsTrainConfig(epochs=2, batch_size=4, top_k=2, max_segments=0),
                         name="t", cache_dir=tmp_path / "cache", show_progress=False, encoder=encoder,
                         vocabulary=(entries, {"source": "test"}))
    assert other["matrix_sha256"] == m["matrix_sha256"] and other["version"] != m["version"], \
        "the same rows served another way are another version"
    tried = m["literal_boost_dev_rp@5"]
    assert set(tried) == {"0.0", "0.1", "0.2", "0.3"}
    best = max(tried.values())
    assert m["assignment"] == {"pool": "segments", "max_segments": 32, "kinds": ["query"],
                               "literal_boost": min(float(b) for b, v in tried.items() if v == best)}
    assert set(m["metrics"]) == {"zero_shot", "trained_without_literal", "trained"}
    assert head.segments_for(query=True) == 32 and head.segments_for(query=False) == 0
    assert m["data"]["examples"]["skillskape"] == 10 and m["data"]["examples"]["label"] == 2
    assert m["data"]["dev"] == ["skillskape-dev", "postings-dev_x"]
    assert m["data"]["reported_only"] == ["postings-test_x"]
    assert set(m["metrics"]["trained"]) == {"skillskape-dev", "postings-dev_x", "postings-test_x"}
    assert [h["epoch"] for h in m["history"]] == [0, 1, 2]
    assert 0.0 <= m["metrics"]["trained"]["postings-test_x"]["rp@5"] <= 1.0


def test_occupations_teach_their_essential_skills_except_those_of_the_profiles_dev_queries(esco):
    from ir.splits import split_dev
    from model_building.training.skills_training import held_out_occupations, occupation_examples

    occupations = [f"o:{i}" for i in range(20)]
    _write_jsonl(esco / "occupations.jsonl", [{"id": o, "label": f"engine fitter {o}", "description": "Fits."}
                                              for o in occupations])
    _write_jsonl(esco / "occupation-skills.jsonl", [{"occupation": o, "essential": ["s:b", "s:a", "s:unknown"],
                                                     "optional": ["s:b"]} for o in occupations])
    _write_jsonl(esco / "profiles" / "queries.jsonl", [{"_id": f"p{i}", "text": "fix engines"} for i in range(20)])
    _write_jsonl(esco / "profiles" / "corpus.jsonl", [{"_id": o, "title": o, "text": ""} for o in occupations])
    (esco / "profiles" / "qrels").mkdir()
    (esco / "profiles" / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"p{i}\to:{i}\t1\n" for i in range(20)), encoding="utf-8")
    _, dev = split_dev([f"p{i}" for i in range(20)])
    held = held_out_occupations(esco)
    assert held == {f"o:{q[1:]}" for q in dev} and len(held) == 3  # 15% of 20
    got = occupation_examples(esco, {"s:a": 0, "s:b": 1})
    assert [e.text for e in got] == [f"engine fitter {o}\nFits." for o in occupations if o not in held]
    assert all(e.skills == (0, 1) and e.source == "occupation" for e in got), "essential links only, served skills"


def test_dev_folds_are_fixed_by_the_text_and_split_a_set_without_overlap():
    from model_building.training.skills_training import LabelledSet

    texts = [f"sentence {i} about engines" for i in range(40)]
    s = LabelledSet("postings-dev_x", texts, [frozenset({i % 2}) for i in range(40)])
    held = [fold(s, f, held_out=True) for f in range(DEV_FOLDS)]
    assert sorted(t for h in held for t in h.texts) == sorted(texts), "every dev text is held out exactly once"
    assert all(h.texts for h in held), "40 texts fill both folds"
    for f in range(DEV_FOLDS):
        trained = fold(s, f, held_out=False)
        assert not set(trained.texts) & set(held[f].texts)
        assert len(trained.texts) + len(held[f].texts) == 40
        assert all(fold_of(t) == f for t in held[f].texts)
    reordered = LabelledSet("x", texts[::-1], s.skills[::-1])
    assert sorted(fold(reordered, 0, held_out=True).texts) == sorted(held[0].texts), "the fold is the text's, not its place"


def test_the_dev_sentences_are_trained_on_cross_fitted_and_the_test_split_never(esco, tmp_path):
    """With enough dev sentences for both folds: one run per fold trains on the other fold, the epoch count and boost
    come from the held-out folds, the final run trains on every dev sentence for that many epochs, the manifest's dev
    figures are the held-out folds' and the test sentences are only reported."""
    from inference_server.config import load_config
    from model_building.concept_packs.vocabulary import VocabEntry
    from model_building.training.skills_training import train_skills
    from tests.support.inference import fake_runtimes

    (esco / "skillskape" / "train.jsonl").write_text(
        "".join(json.dumps({"text": t, "labels": [], "ids": [i]}) + "\n" for t, i in
                [("We fix engines daily.", "s:a"), ("Boat overhaul experience.", "s:b")] * 5), encoding="utf-8")
    queries = [{"_id": f"d{i}", "text": f"{'engine' if i % 2 else 'boat'} work number {i}"} for i in range(12)]
    queries.append({"_id": "t1", "text": "test sentence on engines"})
    (esco / "postings" / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (esco / "postings" / "qrels" / "dev_x.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"d{i}\t{'s:a' if i % 2 else 's:b'}\t1\n" for i in range(12)),
        encoding="utf-8")
    (esco / "postings" / "qrels" / "test_x.tsv").write_text("query-id\tcorpus-id\tscore\nt1\ts:a\t1\n", encoding="utf-8")
    assert {fold_of(q["text"]) for q in queries[:12]} == set(range(DEV_FOLDS)), "the fixture fills both folds"
    encoder = fake_runtimes(load_config(overrides={"models.concept_space": "none"}, environ={}), dim=16,
                            with_reranker=False, with_concepts=False).encoder
    entries = [VocabEntry(id="s:a", label="repair engines", key="esco-a", text="repair engines fix engines"),
               VocabEntry(id="s:b", label="overhaul boats", key="esco-b", text="overhaul boats")]
    m = train_skills(esco, tmp_path / "space", SkillsTrainConfig(epochs=3, batch_size=4, top_k=2), name="t",
                     cache_dir=tmp_path / "cache", show_progress=False, encoder=encoder,
                     vocabulary=(entries, {"source": "test"}))
    assert m["data"]["dev_trained_on"] == ["postings-dev_x"] and m["data"]["examples"]["postings"] == 12
    assert m["data"]["reported_only"] == ["postings-test_x"]
    cross = m["recipe"]["cross_fitted"]
    epochs = cross["epochs"]
    assert 0 <= epochs <= 3 and len(cross["by_epoch_and_boost"]) == 4 * 4
    best = max(cross["by_epoch_and_boost"].values())
    assert cross["by_epoch_and_boost"][f"{epochs}/{m['assignment']['literal_boost']}"] == best
    assert [h["fold"] for h in m["history"]].count(0) == 4 and [h["fold"] for h in m["history"]].count(1) == 4
    assert [h["epoch"] for h in m["history"] if h["fold"] == "all"] == list(range(epochs + 1)), \
        "the final run trains for the cross-fitted epoch count"
    assert m["metrics"]["trained"]["postings-dev_x"]["texts"] == 12, "every dev sentence measured once, held out"
    assert set(m["metrics"]["trained"]) == {"skillskape-dev", "postings-dev_x", "postings-test_x"}
    assert "without them" not in m["recipe"]["selection"] and "cross-fitted" in m["recipe"]["selection"]
