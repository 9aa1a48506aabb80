"""research.long_collection: long documents made of short ones, with the judgements carried over."""

from __future__ import annotations

import json

import pytest

from ir.beir import Dataset
from research.long_collection import build, group_ids, long_qrels


def test_groups_cover_every_id_once_and_are_seeded():
    ids = [str(i) for i in range(10)]
    groups = group_ids(ids, 4, seed=1)
    assert [len(g) for g in groups] == [4, 4, 2]
    assert sorted(i for g in groups for i in g) == sorted(ids)
    assert group_ids(ids, 4, seed=1) == groups and group_ids(ids, 4, seed=2) != groups
    with pytest.raises(ValueError, match="per_doc"):
        group_ids(ids, 0)


def test_a_long_document_gets_the_best_grade_of_its_parts():
    groups = [["a", "b"], ["c"]]
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 1, "x": 1}, "q3": {"a": 0}}
    assert long_qrels(qrels, groups) == {"q1": {"long-0": 2}, "q2": {"long-1": 1}}


def test_build_writes_a_beir_folder_the_tools_read(tmp_path):
    src = tmp_path / "short"
    (src / "qrels").mkdir(parents=True)
    docs = [{"_id": str(i), "title": f"T{i}", "text": f"text number {i}"} for i in range(5)]
    (src / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (src / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "number 3"}) + "\n"
                                       + json.dumps({"_id": "u", "text": "unjudged"}) + "\n")
    (src / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\t3\t1\n")
    info = build(src, tmp_path / "long", per_doc=2, seed=0)
    assert info["documents"] == 3 and info["queries"] == 1
    long = Dataset(tmp_path / "long")
    texts = {d.id: d.text for d in long.iter_corpus()}
    assert sorted(texts) == ["long-0", "long-1", "long-2"]
    assert all(t.count("text number") in (1, 2) for t in texts.values())
    queries, qrels = long.judged_queries("test")
    assert queries == {"q": "number 3"}
    (holder,) = qrels["q"]
    assert "T3\ntext number 3" in texts[holder]
