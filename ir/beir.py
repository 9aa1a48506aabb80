"""BEIR-layout datasets: a folder with `corpus.jsonl` (or `corpus.jsonl.gz`), `queries.jsonl` and
`qrels/<split>.tsv` (header `query-id<TAB>corpus-id<TAB>score`; integer grades, higher = more relevant).

The corpus is streamed (never held in memory); queries and judgements are small and loaded whole. Nothing
here copies the data anywhere: tools take the dataset folder as an argument.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

CORPUS_NAMES = ("corpus.jsonl", "corpus.jsonl.gz")
QUERIES_NAMES = ("queries.jsonl", "queries.jsonl.gz")


class DatasetError(ValueError):
    """A dataset folder or file that is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str

    def source(self) -> dict[str, str]:
        """The OpenSearch document body: the two text fields the index template maps."""
        return {"title": self.title, "text": self.text}

    def joined(self, separator: str = "\n") -> str:
        """Title and text joined the way `sesa_encode` joins its source fields: blank parts skipped."""
        return separator.join(part for part in (self.title, self.text) if part and not part.isspace())


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise DatasetError(f"{path}:{lineno}: expected a JSON object, found {type(obj).__name__}")
                yield lineno, obj
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None


def _require_id(obj: dict, path: Path, lineno: int) -> str:
    doc_id = obj.get("_id")
    if doc_id is None or (isinstance(doc_id, str) and not doc_id.strip()):
        raise DatasetError(f"{path}:{lineno}: missing '_id'")
    return str(doc_id)


def _text(value) -> str:
    return "" if value is None else str(value)


class Dataset:
    """One BEIR folder. Construction validates the layout; reading validates the content lazily."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise DatasetError(f"dataset folder {self.path} does not exist")
        if not self.path.is_dir():
            raise DatasetError(f"{self.path} is not a folder: pass a BEIR dataset folder "
                               "(corpus.jsonl[.gz], queries.jsonl, qrels/<split>.tsv)")
        corpus = _first_existing(self.path, CORPUS_NAMES)
        if corpus is None:
            raise DatasetError(f"{self.path} is not a BEIR dataset folder: no corpus.jsonl or corpus.jsonl.gz")
        self.corpus_path: Path = corpus
        self.queries_path: Path | None = _first_existing(self.path, QUERIES_NAMES)
        self.qrels_dir: Path = self.path / "qrels"

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r})"

    # -- corpus ---------------------------------------------------------------------------------------

    def iter_corpus(self) -> Iterator[Document]:
        """Documents in file order, streamed."""
        for lineno, obj in _iter_jsonl(self.corpus_path):
            yield Document(_require_id(obj, self.corpus_path, lineno), _text(obj.get("title")), _text(obj.get("text")))

    def iter_ids(self) -> Iterator[str]:
        for lineno, obj in _iter_jsonl(self.corpus_path):
            yield _require_id(obj, self.corpus_path, lineno)

    @cached_property
    def document_count(self) -> int:
        """Distinct document ids in the corpus (one streaming pass; a repeated id counts once)."""
        return len(set(self.iter_ids()))

    # -- queries and judgements -------------------------------------------------------------------------

    @cached_property
    def queries(self) -> dict[str, str]:
        if self.queries_path is None:
            raise DatasetError(f"{self.path} has no queries.jsonl")
        out: dict[str, str] = {}
        for lineno, obj in _iter_jsonl(self.queries_path):
            out[_require_id(obj, self.queries_path, lineno)] = _text(obj.get("text"))
        return out

    def splits(self) -> list[str]:
        if not self.qrels_dir.is_dir():
            return []
        return sorted(p.name[: -len(".tsv")] for p in self.qrels_dir.glob("*.tsv"))

    def qrels(self, split: str = "test") -> dict[str, dict[str, int]]:
        """{query id: {doc id: grade}} of qrels/<split>.tsv, every row kept (grades <= 0 included)."""
        path = self.qrels_dir / f"{split}.tsv"
        if not path.is_file():
            available = ", ".join(self.splits()) or "none"
            raise DatasetError(f"{self.path} has no qrels/{split}.tsv (splits available: {available})")
        out: dict[str, dict[str, int]] = {}
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
                    continue
                if len(parts) != 3:
                    raise DatasetError(
                        f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                        f"found {len(parts)}"
                    )
                qid, did, score = (p.strip() for p in parts)
                try:
                    grade = int(score)
                except ValueError:
                    try:
                        grade = float(score)
                    except ValueError:
                        raise DatasetError(f"{path}:{lineno}: score {score!r} is not a number") from None
                    if not grade.is_integer():
                        raise DatasetError(f"{path}:{lineno}: score {score!r} is not an integer grade")
                    grade = int(grade)
                out.setdefault(qid, {})[did] = grade
        return out

    def judged_queries(self, split: str = "test") -> tuple[dict[str, str], dict[str, dict[str, int]]]:
        """The queries of a split that have at least one relevant (grade > 0) document, with their qrels.

        Fails when a judged query id has no text in queries.jsonl.
        """
        qrels = {q: docs for q, docs in self.qrels(split).items() if any(g > 0 for g in docs.values())}
        queries = self.queries
        missing = sorted(set(qrels) - set(queries))
        if missing:
            raise DatasetError(
                f"{len(missing)} judged query ids of qrels/{split}.tsv are not in {self.queries_path}: "
                f"{', '.join(missing[:5])}"
            )
        return {q: queries[q] for q in qrels}, qrels


def load(path: str | Path) -> Dataset:
    return Dataset(path)
