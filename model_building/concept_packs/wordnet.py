"""The built-in ``wordnet-nouns`` pack: the 8,000 most frequent general-domain noun concepts of WordNet 3.0.

Source: Debian package wordnet-base (WordNet licence, Princeton University), parsed from ``data.noun`` here
(no nltk). Selection and rows: :func:`wordnet_nouns_vocab`. Keys are ``wn-<offset>-n``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from inference_server import paths
from inference_server.runtime.concept_space import PACK_REVISIONS
from model_building.concept_packs.vocabulary import VocabEntry, VocabularyError

WORDNET_PACK_SIZE = 8000
WORDNET_PACK_REVISION = PACK_REVISIONS["wordnet-nouns"]
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
