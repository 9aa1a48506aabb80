"""The built-in ``wordnet-nouns`` pack: WordNet database parser, selection rule, rows, locating the data."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from inference_server import paths
from inference_server.runtime.concept_head import ConceptHead
from inference_server.runtime.concept_space import BUILTIN_PACKS, builtin_artifact_dir, resolve_concept_space
from model_building.concept_packs.build import load_vocabulary
from model_building.concept_packs.vocabulary import VocabularyError
from model_building.concept_packs.wordnet import (
    WORDNET_LICENCE,
    WORDNET_PACK_SIZE,
    parse_wordnet_data_line,
    read_wordnet_data,
    read_wordnet_sense_counts,
    select_wordnet_synsets,
    wordnet_nouns_vocab,
)

WN = "http://wordnet-rdf.princeton.edu/wn30/"

# A tiny WordNet dict in the real data.noun format (wndb(5WN)): licence header lines start with two spaces.
HEADER = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  By obtaining, using  \n"
)
SYNSETS = [
    # noun.Tops (lex file 03): excluded however frequent
    "00001740 03 n 01 entity 0 002 ~ 00002000 n 0000 ~ 00003000 n 0000 | that which is perceived or known  ",
    "00002000 05 n 02 dog 0 domestic_dog 0 002 @ 00001740 n 0000 ~ 00004000 n 0000 "
    '| a member of the genus Canis; "the dog barked all night"  ',
    "00003000 06 n 02 car 0 motor_car 0 001 @ 00001740 n 0000 "
    '| a motor vehicle with four wheels; usually propelled by an engine; "he needs a car"; "cars are costly"  ',
    "00004000 05 n 01 puppy 0 001 @ 00002000 n 0000 | a young dog  ",
    # instance noun (only '@i'): excluded however frequent
    "00005000 18 n 02 Albert_Einstein 0 Einstein 0 001 @i 00006000 n 0000 "
    '| physicist born in Germany; "Einstein was a genius"  ',
    "00006000 18 n 01 physicist 0 002 @ 00001740 n 0000 ~i 00005000 n 0000 | a scientist trained in physics  ",
    # a lexical pointer to a verb; 'Walk' repeats the label but for case: not an alias
    "00007000 04 n 03 walk 0 Walk 1 walking 0 002 @ 00001740 n 0000 + 01904930 v 0101 "
    "| the act of traveling by foot  ",
    # both '@i' and '@': not an instance noun; the parent is the '@' hypernym even though '@i' comes first
    "00008000 17 n 02 Thames 0 River_Thames 0 002 @i 00009999 n 0000 @ 00006000 n 0000 | a river in England  ",
]
# sense_key synset_offset sense_number tag_cnt
INDEX_SENSE = [
    "albert_einstein%1:18:00:: 00005000 1 100",
    "car%1:06:00:: 00003000 1 5",
    "dog%1:05:00:: 00002000 1 10",
    "domestic_dog%1:05:00:: 00002000 1 0",
    "einstein%1:18:00:: 00005000 1 3",
    "entity%1:03:00:: 00001740 1 50",
    "motor_car%1:06:00:: 00003000 1 2",
    "physicist%1:18:00:: 00006000 1 0",
    "puppy%1:05:00:: 00004000 1 7",
    "river_thames%1:17:00:: 00008000 1 0",
    "thames%1:17:00:: 00008000 1 1",
    "walk%1:04:00:: 00007000 1 0",
    "walk%2:38:00:: 01904930 1 30",  # a verb sense: not counted for nouns
]
# the expected ranking: dog 10, car 7 and puppy 7 (tie: lower offset first), Thames 1, physicist 0 and walk 0
RANKED = [2000, 3000, 4000, 8000, 6000, 7000]


def write_dict(d, lines=SYNSETS, index_sense=INDEX_SENSE, cntlist=False):
    d.mkdir(parents=True, exist_ok=True)
    (d / "data.noun").write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    if cntlist:  # wordnet-base ships cntlist.rev (sense_key sense_number tag_cnt), not index.sense
        rows = [f"{k} {n} {c}" for k, _, n, c in (r.split() for r in index_sense)]
        (d / "cntlist.rev").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    else:
        (d / "index.sense").write_text("".join(r + "\n" for r in index_sense), encoding="utf-8")
    return d


@pytest.fixture
def wn_dir(tmp_path, monkeypatch):
    d = write_dict(tmp_path / "wordnet")
    monkeypatch.setenv("SESA_WORDNET_DIR", str(d))
    return d


def test_parser_reads_the_data_line_fields(wn_dir):
    synsets = read_wordnet_data(wn_dir / "data.noun")  # the two licence header lines are skipped
    assert [s.offset for s in synsets] == [1740, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
    dog = synsets[1]
    assert (dog.offset, dog.lex_filenum, dog.ss_type) == (2000, 5, "n")
    assert dog.words == ["dog", "domestic_dog"] and dog.lex_ids == [0, 0]
    assert dog.hypernyms == [1740] and dog.instance_hypernyms == [] and dog.parent == 1740
    assert dog.gloss == 'a member of the genus Canis; "the dog barked all night"'
    assert dog.definition == "a member of the genus Canis"
    assert dog.sense_keys() == ["dog%1:05:00::", "domestic_dog%1:05:00::"]
    car = synsets[2]  # a ';' inside the definition stays; the examples go
    assert car.definition == "a motor vehicle with four wheels; usually propelled by an engine"
    einstein, thames, walk = synsets[4], synsets[7], synsets[6]
    assert einstein.is_instance and einstein.parent == 6000  # '@i' is the parent of an instance noun
    assert not thames.is_instance and thames.parent == 6000 and thames.instance_hypernyms == [9999]
    assert walk.lex_ids == [0, 1, 0] and walk.sense_keys()[1] == "walk%1:04:01::"
    assert synsets[0].parent is None and synsets[3].definition == "a young dog"
    # w_cnt is hex, p_cnt decimal
    many = parse_wordnet_data_line("00000001 05 n 0a " + " ".join(f"w{i} 0" for i in range(10)) + " 000 | ten")
    assert len(many.words) == 10 and many.gloss == "ten"


def test_sense_counts_sum_tag_counts_per_synset_and_cntlist_agrees(wn_dir, tmp_path):
    counts, src = read_wordnet_sense_counts(wn_dir)
    assert src == "index.sense"
    assert counts == {5000: 103, 3000: 7, 2000: 10, 1740: 50, 6000: 0, 4000: 7, 8000: 1, 7000: 0}
    alt = write_dict(tmp_path / "debian", cntlist=True)
    alt_counts, alt_src = read_wordnet_sense_counts(alt, read_wordnet_data(alt / "data.noun"))
    assert alt_src == "cntlist.rev" and alt_counts == counts


def test_selection_rule_excludes_instances_and_tops_ranks_by_tag_count_ties_by_offset(wn_dir):
    synsets = read_wordnet_data(wn_dir / "data.noun")
    counts, _ = read_wordnet_sense_counts(wn_dir)
    assert [s.offset for s in select_wordnet_synsets(synsets, counts, None)] == RANKED
    assert [s.offset for s in select_wordnet_synsets(synsets, counts, 3)] == RANKED[:3]
    assert [s.offset for s in select_wordnet_synsets(reversed(synsets), counts, 5)] == RANKED[:5]  # file order moot
    entries, meta = wordnet_nouns_vocab(size=4)
    assert [e.key for e in entries] == [f"wn-{o:08d}-n" for o in RANKED[:4]] and meta["tagged_in_pack"] == 4
    assert [e.label for e in wordnet_nouns_vocab(limit=2)[0]] == ["dog", "car"]  # limit: the most frequent N


def test_pack_rows_ids_keys_labels_aliases_parent(wn_dir):
    entries, meta = wordnet_nouns_vocab()
    by = {e.label: e for e in entries}
    assert list(by) == ["dog", "car", "puppy", "Thames", "physicist", "walk"]
    dog = by["dog"]
    assert dog.id == WN + "00002000-n" and dog.key == "wn-00002000-n"
    assert dog.aliases == ["domestic dog"] and dog.parent == WN + "00001740-n"
    assert dog.description == "a member of the genus Canis"
    assert dog.embedding_text() == "dog. domestic dog. a member of the genus Canis"
    assert by["Thames"].aliases == ["River Thames"] and by["Thames"].parent == WN + "00006000-n"
    assert by["walk"].aliases == ["walking"]  # 'Walk' only differs from the label by case
    assert by["puppy"].aliases == [] and by["puppy"].parent == WN + "00002000-n"
    assert meta["licence"] == WORDNET_LICENCE and meta["source"].startswith("wordnet-base=")
    assert meta["source_files"] == [str(wn_dir / "data.noun"), str(wn_dir / "index.sense")]
    same, _, name = load_vocabulary("wordnet-nouns")
    assert name == "wordnet-nouns" and [e.key for e in same] == [e.key for e in entries]


@pytest.mark.parametrize("bad, why", [
    ("00009000 05 n 01 cat 0 001 @ 00001740 n 0000 a gloss without the bar", "no ' | '"),
    ("00009000 05 n zz cat 0 000 | w_cnt not hex", "base 16"),
    ("00009000 05 n 02 cat 0 000 | two words counted, one given", "ends before"),
    ("00009000 05 n 01 cat 0 002 @ 00001740 n 0000 | two pointers counted, one given", "ends before"),
    ("9000 05 n 01 cat 0 000 | short offset", "not 8 digits"),
    ("00009000 05 n 01 cat 0 001 @ 1740 n 0000 | short pointer offset", "bad pointer"),
    ("00009000 05 n 01 cat 0 000 extra | a stray field", "unexpected field"),
])
def test_malformed_data_line_names_file_and_line(tmp_path, bad, why):
    d = write_dict(tmp_path / "wn", lines=SYNSETS[:2] + [bad])
    with pytest.raises(VocabularyError) as e:
        read_wordnet_data(d / "data.noun")
    assert f"{d / 'data.noun'}:5: malformed WordNet data line" in str(e.value)  # 2 header lines + 2 good lines
    assert why in str(e.value)


def test_malformed_sense_index_line_names_file_and_line(tmp_path):
    d = write_dict(tmp_path / "wn", index_sense=INDEX_SENSE[:2] + ["dog%1:05:00:: 00002000 ten"])
    with pytest.raises(VocabularyError, match=re.escape(f"{d / 'index.sense'}:3: malformed line")):
        read_wordnet_sense_counts(d)
    (d / "index.sense").unlink()
    with pytest.raises(VocabularyError, match="neither index.sense nor cntlist.rev"):
        read_wordnet_sense_counts(d)


def test_wordnet_dir_override_and_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("SESA_WORDNET_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"apt-get install wordnet-base.*SESA_WORDNET_DIR") as e:
        paths.wordnet_dir()
    assert "nowhere" in str(e.value)
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_vocabulary("wordnet-nouns")
    d = write_dict(tmp_path / "wn")
    monkeypatch.setenv("SESA_WORDNET_DIR", str(d))
    assert paths.wordnet_dir() == d


class _StubEncoder:
    class meta:
        model_id, version, source = "stub", "v1", "test"

    passage_max_tokens = 256

    def embed(self, texts, query=False, progress=None):
        return np.array([[len(t), 1.0, (hash(t) % 7) + 1] for t in texts], dtype=np.float32)


def test_registered_as_a_builtin_pack_cached_by_encoder_version(wn_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SESA_HOME", str(tmp_path / "home"))
    assert BUILTIN_PACKS == ("esco-skills", "wordnet-nouns")
    d = builtin_artifact_dir("wordnet-nouns", "v1")
    assert d == tmp_path / "home" / "concepts" / "wordnet-nouns" / "enc-v1-r1"
    from inference_server.runtime.concept_space import PACK_REVISIONS

    # each pack has its own revision: WordNet's does not move ESCO's cache entry
    assert builtin_artifact_dir("esco-skills", "v1").name == f"enc-v1-r{PACK_REVISIONS['esco-skills']}"
    assert PACK_REVISIONS["esco-skills"] != PACK_REVISIONS["wordnet-nouns"]
    with pytest.raises(FileNotFoundError, match="concepts build --vocab wordnet-nouns"):
        resolve_concept_space("wordnet-nouns", _StubEncoder(), build_missing=False)
    h = resolve_concept_space("wordnet-nouns", _StubEncoder())  # built once into the cache, then loaded
    assert isinstance(h, ConceptHead) and h.size == len(RANKED) and h.keys[0] == "wn-00002000-n"
    man = json.loads((d / "manifest.json").read_text())
    assert man["name"] == "wordnet-nouns" and man["licence"] == WORDNET_LICENCE and man["pack_revision"] == 1
    assert resolve_concept_space("wordnet-nouns", _StubEncoder(), build_missing=False).size == len(RANKED)


def test_real_wordnet_nouns_pack(monkeypatch):
    try:
        paths.wordnet_dir()
    except FileNotFoundError as e:
        pytest.skip(f"wordnet-base not installed: {e}")
    entries, meta = wordnet_nouns_vocab()
    assert len(entries) == WORDNET_PACK_SIZE == 8000
    keys = [e.key for e in entries]
    assert len(set(keys)) == len(keys) and all(re.fullmatch(r"wn-\d{8}-n", k) for k in keys)
    labels = {e.label for e in entries}
    assert {"dog", "car", "house", "computer", "water", "music", "doctor"} <= labels
    assert entries[0].label == "man" and entries[0].key == "wn-10287213-n"  # the most tagged eligible synset
    assert "entity" not in labels and "Einstein" not in labels  # noun.Tops and instance nouns are out
    assert meta["tagged_in_pack"] == WORDNET_PACK_SIZE and meta["licence"] == WORDNET_LICENCE
    assert all(e.description and e.parent and e.parent.startswith(WN) for e in entries)
