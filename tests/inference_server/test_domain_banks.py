"""Domain banks of the trained models: file format and validation, the k-NN rule, the Rerank RPC's domain
field and skip option and Encode's per-query concept_domain (fake models), and the shipped banks with the
real encoder."""

from __future__ import annotations

import json
import logging

import grpc
import numpy as np
import pytest

from inference_server.contract import inference_pb2 as pb
from inference_server.contract import inference_pb2_grpc as pbg
from inference_server.runtime.domain import DomainBank, DomainBankError, knn_similarity, load_domain_bank, normalise
from inference_server.runtime.encoder import EncodeItem
from inference_server.testing import ServerThread, fake_runtimes
from inference_server.training.domain_bank import domain_bank, write_domain_bank


def _model_dir(tmp_path, bank, **spec):
    d = tmp_path / "rr"
    d.mkdir(exist_ok=True)
    (d / "manifest.json").write_text(json.dumps({"role": "reranker", "files": {}}), encoding="utf-8")
    write_domain_bank(d, bank, {"k": 2, "threshold": 0.5, "encoder": "enc", "reference": "3 test queries", **spec})
    return d, json.loads((d / "manifest.json").read_text(encoding="utf-8"))


def test_knn_similarity_is_the_mean_of_the_k_best_cosines():
    bank = normalise(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32))
    q = np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32)
    sims = knn_similarity(q, bank, 2)
    assert sims[0] == pytest.approx((1 + 2 ** -0.5) / 2)
    assert sims[1] == pytest.approx(0.0)
    assert knn_similarity(q, bank, 99)[0] == pytest.approx((1 + 0 + 2 ** -0.5) / 3)  # k capped at the bank size


def test_threshold_is_the_percentile_of_held_out_queries(tmp_path):
    rng = np.random.default_rng(0)
    train, dev = rng.normal(size=(50, 8)), rng.normal(size=(40, 8))
    bank, thr, dev_sims = domain_bank(train, dev, k=5, percentile=5)
    assert np.allclose(np.linalg.norm(bank, axis=1), 1)
    assert thr == pytest.approx(np.percentile(dev_sims, 5))
    assert (dev_sims >= thr).mean() >= 0.95
    with pytest.raises(ValueError, match="dev"):
        domain_bank(train, dev[:0])
    with pytest.raises(ValueError, match="percentile"):
        domain_bank(train, dev, percentile=80)


def test_bank_round_trips_through_the_manifest_with_its_checksum(tmp_path):
    d, manifest = _model_dir(tmp_path, np.eye(3, 4))
    assert manifest["domain"]["file"] == "domain.npy" and manifest["files"]["domain.npy"]["bytes"] > 0
    bank = DomainBank.from_manifest(d, manifest)
    assert bank.dimension == 4 and bank.k == 2 and bank.reference == "3 test queries"
    v = bank.check(np.array([1, 0, 0, 0], dtype=np.float32))
    assert v.similarity == pytest.approx(0.5) and v.in_domain  # mean of 1 and 0, threshold 0.5
    assert not bank.check(np.array([0, 0, 0, 1], dtype=np.float32)).in_domain
    assert DomainBank.from_manifest(d, {"role": "reranker"}) is None  # no bank declared: none


@pytest.mark.parametrize("spec, message", [
    ({"k": 0}, "domain.k"),
    ({"k": True}, "domain.k"),
    ({"threshold": 3.0}, "threshold"),
    ({"threshold": "high"}, "threshold"),
    ({"file": "missing.npy"}, "not found"),
])
def test_a_bad_bank_entry_is_a_clear_error(tmp_path, spec, message):
    d, manifest = _model_dir(tmp_path, np.eye(3, 4))
    manifest["domain"].update(spec)
    with pytest.raises(DomainBankError, match=message):
        DomainBank.from_manifest(d, manifest)
    with pytest.raises(DomainBankError, match="must be an object"):
        DomainBank.from_manifest(d, {"domain": {"k": 3}})


def test_a_damaged_bank_file_is_a_clear_error(tmp_path):
    d, manifest = _model_dir(tmp_path, np.eye(3, 4))
    (d / "domain.npy").write_bytes(b"not numpy")
    with pytest.raises(DomainBankError, match="readable"):
        DomainBank.from_manifest(d, manifest)
    np.save(d / "domain.npy", np.array([1.0, np.nan]))
    with pytest.raises(DomainBankError, match="finite"):
        DomainBank.from_manifest(d, manifest)


def test_a_bank_from_another_encoder_is_ignored_with_a_warning(tmp_path, caplog):
    d, manifest = _model_dir(tmp_path, np.eye(3, 4))
    with caplog.at_level(logging.WARNING):
        assert load_domain_bank(d, manifest, "enc", 8) is None
        assert load_domain_bank(d, manifest, "other-encoder", 4) is None
    assert "4-d" in caplog.text and "other-encoder" in caplog.text
    assert load_domain_bank(d, manifest, "enc", 4) is not None


IN_DOMAIN = ["vaccines train the immune system", "antibodies neutralise the virus", "t cells kill infected cells"]


@pytest.fixture(scope="module")
def domain_server(cfg_factory_module):
    """Fake models; the reranker's and the concept head's bank is the fake encoder's embeddings of three
    immunology sentences."""
    cfg = cfg_factory_module()
    rt = fake_runtimes(cfg)
    enc = rt.encoder
    dense = np.stack([r.dense for r in enc.compute([EncodeItem(s, 0) for s in enc.tokenize(IN_DOMAIN, True)])])
    bank = DomainBank(bank=normalise(dense), k=1, threshold=0.99, encoder="fake/encoder",
                      reference="3 immunology sentences")
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
    """The shipped bank loads against the built-in encoder; a SciFact-style claim passes, an aerodynamics
    question (Cranfield's domain, never used to set the threshold) does not."""
    from inference_server import paths
    from inference_server.runtime.loader import load_encoder

    d = paths.shipped_reranker_dir()
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    enc = load_encoder(cfg_factory(), with_concepts=False)
    bank = load_domain_bank(d, manifest, enc.meta.model_id, enc.meta.dimension)
    assert bank is not None and bank.k == manifest["domain"]["k"] and 0 < bank.threshold < 1
    claim, question = enc.embed(["Vitamin D deficiency increases the risk of multiple sclerosis.",
                                 "what is the effect of wing sweep on the flutter speed of supersonic aircraft"],
                                query=True)
    assert bank.check(claim).in_domain
    assert not bank.check(question).in_domain


def test_the_loader_attaches_the_bank_and_refuses_a_damaged_one(cfg_factory, tmp_path):
    import shutil

    from inference_server import paths
    from inference_server.export import ModelResolutionError
    from inference_server.runtime.loader import load_runtimes

    shipped = paths.shipped_reranker_dir()
    rt = load_runtimes(cfg_factory(**{"models.reranker": str(shipped)}))
    assert rt.reranker.domain is not None and rt.reranker.domain.dimension == rt.encoder.meta.dimension
    off = load_runtimes(cfg_factory(**{"models.reranker": str(shipped), "rerank.domain_check": False}))
    assert off.reranker.domain is None
    copy = tmp_path / "rr"
    shutil.copytree(shipped, copy)
    (copy / "domain.npy").write_bytes(b"damaged")
    with pytest.raises(ModelResolutionError, match="domain_check: false"):
        load_runtimes(cfg_factory(**{"models.reranker": str(copy)}))


def test_the_trained_concept_head_ships_a_bank_the_loader_attaches(cfg_factory, tmp_path):
    import shutil
    from pathlib import Path

    from inference_server.export import ModelResolutionError
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
