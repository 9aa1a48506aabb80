"""Fixtures for the training tests: a synthetic BEIR folder, a tiny vocabulary, a fake encoder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TOPICS = {
    "vaccine": ["vaccine", "immune", "antibody", "infection", "virus"],
    "heart": ["heart", "cardiac", "blood", "pressure", "artery"],
    "brain": ["brain", "neuron", "cortex", "memory", "cognitive"],
    "tumor": ["tumor", "cancer", "cell", "growth", "metastasis"],
    "diet": ["diet", "obesity", "insulin", "glucose", "weight"],
}


def data_dir() -> Path | None:
    """The shared evaluation data (``$SESA_DATA_DIR`` or ``<repo>/../shared/data``), if present."""
    env = os.environ.get("SESA_DATA_DIR")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    for c in cands:
        if (c / "scifact" / "qrels" / "train.tsv").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("shared evaluation data (scifact) not found; set SESA_DATA_DIR")
    return d


@pytest.fixture(scope="session")
def synthetic_beir(tmp_path_factory) -> Path:
    """40 documents on 5 topics, 20 train + 10 test queries, binary qrels."""
    import random

    rng = random.Random(0)
    root = tmp_path_factory.mktemp("beir")
    docs, queries, train, test = [], [], [], []
    names = list(TOPICS)
    for i in range(40):
        topic = names[i % len(names)]
        words = TOPICS[topic]
        body = ". ".join(
            f"The {rng.choice(words)} study measured {rng.choice(words)} and {rng.choice(words)} in {n + 3} patients"
            for n in range(4)
        ) + "."
        docs.append({"_id": f"d{i}", "title": f"{words[0].title()} {words[1]} and {words[2]} findings {i}",
                     "text": body})
    for j in range(30):
        topic = names[j % len(names)]
        did = f"d{(j % len(names)) + len(names) * (j % 8)}"
        queries.append({"_id": f"q{j}", "text": f"does {TOPICS[topic][1]} affect {TOPICS[topic][3]}", "metadata": {}})
        (train if j < 20 else test).append((f"q{j}", did))
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    with open(root / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(q) + "\n" for q in queries)
    (root / "qrels").mkdir()
    for name, rows in (("train", train), ("test", test)):
        with open(root / "qrels" / f"{name}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"{q}\t{d}\t1\n" for q, d in rows)
    return root


@pytest.fixture(scope="session")
def synthetic_vocab(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vocab")
    p = root / "vocab.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        n = 0
        for topic, words in TOPICS.items():
            for w in words:
                f.write(json.dumps({"id": f"http://example.org/c/{topic}-{w}", "label": f"{w} research",
                                    "description": f"Knowledge of {w} in {topic} studies."}) + "\n")
                n += 1
    return p


@pytest.fixture
def fake_encoder():
    """An EncoderRuntime with the real MiniLM tokenizer and a deterministic bag-of-tokens model."""
    from inference_server.config import load_config
    from tests.support.inference import fake_runtimes

    cfg = load_config(overrides={"models.concept_space": "none"}, environ={})
    enc = fake_runtimes(cfg, dim=32, with_reranker=False, with_concepts=False).encoder
    return enc
