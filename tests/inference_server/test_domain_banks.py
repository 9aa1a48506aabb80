"""Domain banks of the trained models: file format and validation, the k-NN rule, the Rerank RPC's domain
field and skip option and Encode's per-query concept_domain (fake models), and the shipped banks with the
real encoder."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from inference_server.contract import inference_pb2 as pb
from inference_server.contract import inference_pb2_grpc as pbg
from inference_server.runtime.domain import (
    DomainBank,
    DomainBankError,
    calibrate,
    knn_similarity,
    load_domain_bank,
    normalise,
    read_queries,
)
from inference_server.runtime.encoder import EncodeItem
from model_building.training.domain_bank import write_domain_bank
from tests.support.inference import ServerThread, fake_runtimes

# a toy embedder: one-hot rows by the first word, so similarities are exact
WORDS = ["alpha", "beta", "gamma", "delta"]


def onehot(texts):
    return np.array([[1.0 if t.split()[0] == w else 0.0 for w in WORDS] for t in texts], dtype=np.float32)


def _model_dir(tmp_path, train=("alpha one", "beta two", "alpha three"), dev=("alpha four", "beta five"), **spec):
    d = tmp_path / "rr"
    d.mkdir(exist_ok=True)
    (d / "manifest.json").write_text(json.dumps({"role": "reranker", "files": {}}), encoding="utf-8")
    write_domain_bank(d, list(train), list(dev), {"k": 1, "percentile": 0, "reference": "3 test queries", **spec})
    return d, json.loads((d / "manifest.json").read_text(encoding="utf-8"))


def test_knn_similarity_is_the_mean_of_the_k_best_cosines():
    bank = normalise(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32))
    q = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)
    sims = knn_similarity(q, bank, 2)
    assert sims[0] == pytest.approx((1 + 2 ** -0.5) / 2)
    assert sims[1] == pytest.approx(0.0)
    assert knn_similarity(q, bank, 99)[0] == pytest.approx((1 + 0 + 2 ** -0.5) / 3)  # k capped at the bank size


def test_threshold_is_the_percentile_of_held_out_queries():
    rng = np.random.default_rng(0)
    train, dev = rng.normal(size=(50, 8)), rng.normal(size=(40, 8))
    bank, thr, dev_sims = calibrate(train, dev, k=5, percentile=5)
    assert np.allclose(np.linalg.norm(bank, axis=1), 1)
    assert thr == pytest.approx(np.percentile(dev_sims, 5))
    assert (dev_sims >= thr).mean() >= 0.95
    with pytest.raises(DomainBankError, match="dev"):
        calibrate(train, dev[:0], 5, 5)
    with pytest.raises(DomainBankError, match="percentile"):
        calibrate(train, dev, 5, 80)


def test_the_bank_ships_query_texts_and_is_calibrated_by_the_loading_encoder(tmp_path):
    d, manifest = _model_dir(tmp_path)
    assert manifest["domain"]["file"] == "domain.json" and manifest["files"]["domain.json"]["bytes"] > 0
    assert read_queries(d / "domain.json") == (["alpha one", "beta two", "alpha three"], ["alpha four", "beta five"])
    bank = DomainBank.from_manifest(d, manifest, onehot)
    assert bank.dimension == 4 and bank.k == 1 and bank.reference == "3 test queries"
    assert bank.threshold == pytest.approx(1.0)  # both dev queries have an exact neighbour; 0th percentile
    assert bank.check(onehot(["alpha x"])[0]).in_domain and bank.check(onehot(["beta y"])[0]).in_domain
    v = bank.check(onehot(["gamma z"])[0])
    assert v.similarity == pytest.approx(0.0) and not v.in_domain
    # another encoder calibrates its own threshold from the same texts: no train/serve skew
    shifted = DomainBank.from_manifest(d, manifest, lambda t: onehot(t) + 0.5)
    assert shifted.threshold == pytest.approx(1.0) and shifted.check(onehot(["alpha q"])[0] + 0.5).in_domain
    assert DomainBank.from_manifest(d, {"role": "reranker"}, onehot) is None  # no bank declared: none


@pytest.mark.parametrize("spec, message", [
    ({"k": 0}, "domain.k"),
    ({"k": True}, "domain.k"),
    ({"percentile": 70}, "percentile"),
    ({"percentile": "low"}, "percentile"),
    ({"file": "missing.json"}, "not found"),
])
def test_a_bad_bank_entry_is_a_clear_error(tmp_path, spec, message):
    d, manifest = _model_dir(tmp_path)
    manifest["domain"].update(spec)
    with pytest.raises(DomainBankError, match=message):
        DomainBank.from_manifest(d, manifest, onehot)
    with pytest.raises(DomainBankError, match="must be an object"):
        DomainBank.from_manifest(d, {"domain": {"k": 3}}, onehot)


@pytest.mark.parametrize("content, message", [
    (b"not json", "not readable JSON"),
    (b'{"train": ["a"]}', "'dev' must be a non-empty list"),
    (b'{"train": [], "dev": ["a"]}', "'train' must be a non-empty list"),
    (b'{"train": ["a", 3], "dev": ["b"]}', "'train' must be"),
    (b'{"train": ["a"], "dev": ["  "]}', "'dev' must be"),
])
def test_a_damaged_bank_file_is_a_clear_error(tmp_path, content, message):
    d, manifest = _model_dir(tmp_path)
    (d / "domain.json").write_bytes(content)
    with pytest.raises(DomainBankError, match=message):
        load_domain_bank(d, manifest, onehot)


IN_DOMAIN = ["vaccines train the immune system", "antibodies neutralise the virus", "t cells kill infected cells"]


@pytest.fixture(scope="module")
def domain_server(cfg_factory_module):
    """Fake models; the reranker's and the concept head's bank is the fake encoder's embeddings of three
    immunology sentences."""
    cfg = cfg_factory_module()
    rt = fake_runtimes(cfg)
    enc = rt.encoder
    dense = np.stack([r.dense for r in enc.compute([EncodeItem(s, 0) for s in enc.tokenize(IN_DOMAIN, True)])])
    bank = DomainBank(bank=normalise(dense), k=1, threshold=0.99, reference="3 immunology sentences")
    rt.reranker.domain = bank
    enc.head.domain = bank
    with ServerThread(cfg, rt) as st:
        yield st


def test_encode_reports_the_concept_domain_of_queries_only(domain_server):
    far = "supersonic flutter of swept aircraft wings at high mach numbers"
    with grpc.insecure_channel(domain_server.address) as ch:
        s = pbg.InferenceStub(ch)
        r = s.Encode(pb.EncodeRequest(texts=[IN_DOMAIN[1], far], options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)),
                     timeout=10)
        inside, outside = r.embeddings
        assert inside.concept_domain.in_domain and inside.concept_domain.similarity == pytest.approx(1.0, abs=1e-5)
        assert not outside.concept_domain.in_domain and outside.concept_domain.similarity < 0.99
        assert outside.concept_domain.reference == "3 immunology sentences" and len(outside.concepts) > 0
        docs = s.Encode(pb.EncodeRequest(texts=[far], options=pb.EncodeOptions(kind=pb.TEXT_KIND_PASSAGE)), timeout=10)
        assert not docs.embeddings[0].HasField("concept_domain"), "documents are never gated"


def test_encode_without_a_bank_has_no_concept_domain(stub):
    r = stub.Encode(pb.EncodeRequest(texts=["q"], options=pb.EncodeOptions(kind=pb.TEXT_KIND_QUERY)), timeout=10)
    assert not r.embeddings[0].HasField("concept_domain")


def test_rerank_reports_the_domain_and_skips_only_when_asked(domain_server):
    with grpc.insecure_channel(domain_server.address) as ch:
        s = pbg.InferenceStub(ch)
        r = s.Rerank(pb.RerankRequest(query=IN_DOMAIN[0], passages=["vaccines work", "aircraft wings"],
                                      options=pb.RerankOptions(skip_out_of_domain=True)), timeout=10)
        assert r.HasField("domain") and r.domain.in_domain and r.domain.similarity == pytest.approx(1.0, abs=1e-5)
        assert r.domain.threshold == pytest.approx(0.99) and r.domain.reference == "3 immunology sentences"
        assert len(r.scores) == 2

        far = "supersonic flutter of swept aircraft wings at high mach numbers"
        r = s.Rerank(pb.RerankRequest(query=far, passages=["vaccines work", "aircraft wings"]), timeout=10)
        assert not r.domain.in_domain and r.domain.similarity < 0.99
        assert len(r.scores) == 2  # scored anyway: the caller did not ask to skip
        r = s.Rerank(pb.RerankRequest(query=far, passages=["vaccines work", "aircraft wings"],
                                      options=pb.RerankOptions(skip_out_of_domain=True)), timeout=10)
        assert not r.domain.in_domain and len(r.scores) == 0 and r.model.id == "fake/reranker"
    body = domain_server.server.metrics.registry
    assert body.get_sample_value("sesa_rerank_out_of_domain_total", {"action": "skipped"}) == 1
    assert body.get_sample_value("sesa_rerank_out_of_domain_total", {"action": "scored"}) == 1


def test_rerank_without_a_bank_has_no_domain_field(stub):
    r = stub.Rerank(pb.RerankRequest(query="anything", passages=["p"],
                                     options=pb.RerankOptions(skip_out_of_domain=True)), timeout=10)
    assert not r.HasField("domain") and len(r.scores) == 1


def test_the_shipped_reranker_bank_separates_its_domain_with_the_real_encoder(cfg_factory):
    """The shipped bank, calibrated by the built-in encoder as the server runs it (int8 on a CPU): a
    SciFact-style claim passes, an aerodynamics question (Cranfield's domain, never used to set the
    threshold) does not, and about 95% of the held-out dev queries pass by construction."""
    from inference_server import paths
    from inference_server.runtime.loader import load_encoder, query_embedder

    d = paths.shipped_reranker_dir()
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    enc = load_encoder(cfg_factory(), with_concepts=False)
    bank = load_domain_bank(d, manifest, query_embedder(enc))
    assert bank is not None and bank.k == manifest["domain"]["k"] and 0 < bank.threshold < 1
    assert bank.bank.shape == (manifest["domain"]["queries"]["train"], enc.meta.dimension)
    _, dev = read_queries(d / "domain.json")
    passed = np.mean([bank.check(v).in_domain for v in enc.embed(dev, query=True)])
    assert 0.94 <= passed <= 0.97
    claim, question = enc.embed(["Vitamin D deficiency increases the risk of multiple sclerosis.",
                                 "what is the effect of wing sweep on the flutter speed of supersonic aircraft"],
                                query=True)
    assert bank.check(claim).in_domain
    assert not bank.check(question).in_domain


def test_the_loader_attaches_the_bank_and_refuses_a_damaged_one(cfg_factory, tmp_path):
    import shutil

    from inference_server import paths
    from inference_server.model_store import ModelResolutionError
    from inference_server.runtime.loader import load_runtimes

    shipped = paths.shipped_reranker_dir()
    rt = load_runtimes(cfg_factory(**{"models.reranker": str(shipped)}))
    assert rt.reranker.domain is not None and rt.reranker.domain.dimension == rt.encoder.meta.dimension
    assert rt.encoder.head is None or rt.encoder.head.domain is None  # the default zero-shot pack has no bank
    off = load_runtimes(cfg_factory(**{"models.reranker": str(shipped), "rerank.domain_check": False}))
    assert off.reranker.domain is None
    copy = tmp_path / "rr"
    shutil.copytree(shipped, copy)
    (copy / "domain.json").write_bytes(b"damaged")
    with pytest.raises(ModelResolutionError, match="domain_check: false"):
        load_runtimes(cfg_factory(**{"models.reranker": str(copy)}))


def test_the_trained_concept_head_ships_a_bank_the_loader_attaches(cfg_factory, tmp_path):
    import shutil
    from pathlib import Path

    from inference_server.model_store import ModelResolutionError
    from inference_server.runtime.loader import load_encoder

    trained = Path(__file__).resolve().parents[2] / "models" / "esco-skills-sesa-scifact"
    enc = load_encoder(cfg_factory(**{"models.concept_space": str(trained)}))
    assert enc.head.domain is not None and enc.head.domain.reference.endswith("scifact train queries")
    claim, question = enc.embed(["Vitamin D deficiency increases the risk of multiple sclerosis.",
                                 "what is the effect of wing sweep on the flutter speed of supersonic aircraft"],
                                query=True)
    assert enc.head.domain.check(claim).in_domain and not enc.head.domain.check(question).in_domain
    off = load_encoder(cfg_factory(**{"models.concept_space": str(trained), "concepts.domain_check": False}))
    assert off.head.domain is None
    copy = tmp_path / "cs"
    shutil.copytree(trained, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["domain"]["k"] = 0
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelResolutionError, match="concepts.domain_check: false"):
        load_encoder(cfg_factory(**{"models.concept_space": str(copy)}))
