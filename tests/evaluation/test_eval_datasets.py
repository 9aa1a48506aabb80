"""The BEIR loader on tiny datasets written to tmp folders (plain and gzip corpus)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ir.beir import Dataset, DatasetError, Document

CORPUS = [
    {"_id": "d1", "title": "Alpha", "text": "first document"},
    {"_id": "d2", "title": "", "text": "no title here"},
    {"_id": 3, "title": "Numeric id", "text": "ids become strings"},
    {"_id": "d4", "title": "Only title", "text": None},
]
QUERIES = [
    {"_id": "q1", "text": "alpha", "metadata": {}},
    {"_id": "q2", "text": "title"},
    {"_id": "q3", "text": "never judged"},
    {"_id": "q4", "text": "judged but nothing relevant"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t1\nq2\t3\t1\nq4\td1\t0\n"


def write_dataset(root: Path, gz: bool = False, corpus=CORPUS, qrels: str = QRELS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(d) + "\n" for d in corpus)
    if gz:
        with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        (root / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return root


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_corpus_streams_documents_in_order(tmp_path, gz):
    ds = Dataset(write_dataset(tmp_path / "tiny", gz=gz))
    docs = list(ds.iter_corpus())
    assert [d.id for d in docs] == ["d1", "d2", "3", "d4"]
    assert docs[0] == Document("d1", "Alpha", "first document")
    assert docs[3].text == ""  # null text becomes empty
    assert ds.document_count == 4
    assert ds.name == "tiny"
    assert ds.corpus_path.name == ("corpus.jsonl.gz" if gz else "corpus.jsonl")


def test_document_text_is_title_and_text_like_the_ingest_processor():
    assert Document("x", "T", "body").joined() == "T\nbody"
    assert Document("x", "", "body").joined() == "body"
    assert Document("x", "T", "  ").joined() == "T"
    assert Document("x", "T", "body").source() == {"title": "T", "text": "body"}


def test_queries_and_graded_qrels(tmp_path):
    ds = Dataset(write_dataset(tmp_path / "tiny"))
    assert ds.queries["q1"] == "alpha"
    qrels = ds.qrels("test")
    assert qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"3": 1}, "q4": {"d1": 0}}
    assert all(isinstance(g, int) for docs in qrels.values() for g in docs.values())
    assert ds.splits() == ["test"]


def test_judged_queries_are_those_with_a_relevant_document(tmp_path):
    ds = Dataset(write_dataset(tmp_path / "tiny"))
    queries, qrels = ds.judged_queries("test")
    assert list(queries) == ["q1", "q2"]
    assert set(qrels) == {"q1", "q2"}


def test_duplicate_ids_count_once(tmp_path):
    ds = Dataset(write_dataset(tmp_path / "dup", corpus=CORPUS + [{"_id": "d1", "title": "again", "text": ""}]))
    assert ds.document_count == 4


def test_float_integer_grades_are_accepted(tmp_path):
    ds = Dataset(write_dataset(tmp_path / "f", qrels="query-id\tcorpus-id\tscore\nq1\td1\t3.0\n"))
    assert ds.qrels()["q1"]["d1"] == 3


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is not a folder"),
        (lambda p: p.mkdir(), "no corpus.jsonl"),
    ],
    ids=["missing", "file", "empty-folder"],
)
def test_bad_folders_fail_clearly(tmp_path, setup, message):
    path = tmp_path / "bad"
    setup(path)
    with pytest.raises(DatasetError, match=message):
        Dataset(path)


def test_bad_content_names_file_and_line(tmp_path):
    root = write_dataset(tmp_path / "broken")
    (root / "corpus.jsonl").write_text('{"_id": "a", "text": "ok"}\n{not json\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: not valid JSON"):
        list(Dataset(root).iter_corpus())
    (root / "corpus.jsonl").write_text('{"title": "no id"}\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:1: missing '_id'"):
        list(Dataset(root).iter_corpus())


def test_bad_qrels_fail_clearly(tmp_path):
    root = write_dataset(tmp_path / "q", qrels="query-id\tcorpus-id\tscore\nq1\td1\n")
    ds = Dataset(root)
    with pytest.raises(DatasetError, match=r"test\.tsv:2: expected 3 tab-separated columns"):
        ds.qrels()
    with pytest.raises(DatasetError, match=r"no qrels/dev\.tsv \(splits available: test\)"):
        ds.qrels("dev")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(DatasetError, match="not a number"):
        Dataset(root).qrels()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(DatasetError, match="not in"):
        Dataset(root).judged_queries()


def test_missing_queries_file(tmp_path):
    root = write_dataset(tmp_path / "nq")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match="no queries.jsonl"):
        _ = Dataset(root).queries


def test_truncated_gzip_is_a_dataset_error(tmp_path):
    root = write_dataset(tmp_path / "gz", gz=True)
    data = (root / "corpus.jsonl.gz").read_bytes()
    (root / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="cannot be read"):
        list(Dataset(root).iter_corpus())
