"""The segment-cosine cross-encoder and the reranker's training data (tiny random BERT, synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from model_building import segment_cross_encoder as sce
from model_building.training.reranker import (
    Group,
    RerankerTrainConfig,
    SelfSupervisedSource,
    epoch_groups,
    ict_source,
    neighbour_pools,
    title_source,
)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from tests.support.inference import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("bert"), classification=False, layers=2)


def _pair_feats(base, queries, passages, max_tokens=64):
    from model_building.training.reranker import PairEncoder

    return PairEncoder(base / "tokenizer.json", max_tokens)(queries, passages)


# --- the model --------------------------------------------------------------------------------------


def test_untrained_score_is_the_scaled_cosine_of_the_segment_means(tiny_bert):
    m = sce.from_encoder(tiny_bert, scale=7.0).eval()
    f = _pair_feats(tiny_bert, ["immune response", "immune response"], ["The vaccine study.", "Heart pressure."])
    with torch.no_grad():
        got = m(**f).view(-1).numpy()
        h = m.bert(**f).last_hidden_state.numpy()
    ids, types, mask = f["input_ids"].numpy(), f["token_type_ids"].numpy(), f["attention_mask"].numpy()
    for row in range(2):
        # computed independently: positions by hand, [CLS]=101 and [SEP]=102 left out, padding left out
        q = [i for i in range(ids.shape[1]) if mask[row, i] and types[row, i] == 0 and ids[row, i] not in (101, 102)]
        d = [i for i in range(ids.shape[1]) if mask[row, i] and types[row, i] == 1 and ids[row, i] not in (101, 102)]
        assert q and d
        qv, dv = h[row, q].mean(0), h[row, d].mean(0)
        cos = float(qv @ dv / np.linalg.norm(qv) / np.linalg.norm(dv))
        assert got[row] == pytest.approx(7.0 * cos, abs=1e-4)  # the [CLS] term starts at zero


def test_padding_does_not_change_a_pair_score(tiny_bert):
    m = sce.from_encoder(tiny_bert).eval()
    short = _pair_feats(tiny_bert, ["immune"], ["The vaccine study."])
    both = _pair_feats(tiny_bert, ["immune", "immune"], ["The vaccine study.", "A much longer passage " * 5])
    with torch.no_grad():
        assert float(m(**short)[0, 0]) == pytest.approx(float(m(**both)[0, 0]), abs=1e-4)


def test_save_load_round_trip_keeps_every_weight_and_the_head(tiny_bert, tmp_path):
    m = sce.from_encoder(tiny_bert, scale=3.0)
    with torch.no_grad():
        m.head.weight.normal_()
        m.head.bias.fill_(0.25)
        m.scale.fill_(4.5)
    out = sce.save(m.eval(), tmp_path / "ce")
    assert sce.is_segment_cross_encoder(out) and (out / sce.HEAD_FILE).is_file()
    back = sce.load(out)
    f = _pair_feats(tiny_bert, ["q one", "q two"], ["first passage", "second passage here"])
    with torch.no_grad():
        assert np.allclose(m(**f).numpy(), back(**f).numpy(), atol=1e-5)
    assert float(back.scale.detach()) == pytest.approx(4.5)


def test_load_refuses_an_unknown_architecture(tiny_bert, tmp_path):
    out = sce.save(sce.from_encoder(tiny_bert), tmp_path / "ce")
    (out / sce.ARCH_FILE).write_text('{"architecture": "something-else"}', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown architecture"):
        sce.load(out)


@pytest.mark.slow
def test_onnx_export_of_a_segment_cross_encoder_matches_torch_and_serves(tiny_bert, tmp_path):
    import shutil

    from model_building.export import export_hf_dir
    from model_building.training.reranker import load_runtime, rerank_scores

    m = sce.from_encoder(tiny_bert, scale=5.0)
    with torch.no_grad():
        m.head.weight.normal_(std=0.1)
    d = sce.save(m.eval(), tmp_path / "ce")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (tiny_bert / name).is_file():
            shutil.copy2(tiny_bert / name, d / name)
    exported = export_hf_dir(d, "reranker", tmp_path / "cache", force=True)
    assert exported.manifest["outputs"] == ["logits"] and exported.manifest["num_labels"] == 1
    import onnxruntime as ort

    f = _pair_feats(tiny_bert, ["immune", "immune"], ["The vaccine study.", "Heart pressure and blood."])
    sess = ort.InferenceSession(str(exported.onnx_path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = sess.run(["logits"], {k: v.numpy() for k, v in f.items()})
    with torch.no_grad():
        assert np.allclose(onnx_logits, m(**f).numpy(), atol=1e-4)
    rt = load_runtime(exported.onnx_path.parent, 64)  # the server's own loader and runtime
    s = rerank_scores(rt, "immune", ["The vaccine study.", "Heart pressure and blood."])
    # the path `precision: auto` picks on this CPU: fp32 matches to float noise; OpenVINO bf16 (a CPU with bf16
    # units) rounds the products to bf16, so it matches to bf16's precision
    tolerance = 1e-4 if rt.meta.precision == "fp32" else 1e-2
    assert np.allclose(s, onnx_logits.reshape(-1), atol=tolerance), (rt.meta.engine, rt.meta.precision)


# --- training data ----------------------------------------------------------------------------------


def test_neighbour_pools_exclude_the_item_itself_and_rank_by_similarity():
    emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]], dtype=np.float32)
    pools = neighbour_pools(emb, 2, chunk=3)  # a chunk boundary inside the rows
    assert pools.shape == (4, 2)
    assert pools[0].tolist() == [1, 3] and pools[2].tolist() == [3, 1]
    assert all(i not in pools[i] for i in range(4))
    assert neighbour_pools(emb[:1], 5).shape == (1, 0)


def test_self_supervised_groups_put_the_positive_first_and_draw_negatives_from_the_pool():
    src = SelfSupervisedSource("esco", ["a", "b", "c", "d"], ["A", "B", "C", "D"],
                               np.array([[1, 2], [0, 2], [3, 0], [2, 1]]))
    gs = src.groups(10, 3, seed=0)
    assert len(gs) == 4  # at most one group per item
    for g in gs:
        i = "abcd".index(g.query)
        assert g.texts[0] == "ABCD"[i] and g.source == "esco" and len(g.texts) == 3
        assert set(g.texts[1:]) <= {"ABCD"[j] for j in src.pools[i]}
        assert g.passages(["unused"]) == g.texts


def test_title_source_skips_held_out_documents_and_short_titles(synthetic_beir):
    from model_building.training.data import load_beir

    ds = load_beir(synthetic_beir)
    emb = np.random.default_rng(0).normal(size=(len(ds.doc_ids), 8)).astype(np.float32)
    src = title_source(ds, emb, 5, exclude_docs={0, 1})
    assert ds.titles[0] not in src.queries and ds.titles[1] not in src.queries
    assert len(src.queries) == len(ds.doc_ids) - 2 and src.pools.shape == (len(ds.doc_ids) - 2, 5)
    assert all(q.split() and len(q.split()) >= 4 for q in src.queries)
    assert src.passages[0] == ds.bodies[2]  # the body alone: the title is not in its own positive


def test_epoch_groups_resample_negatives_per_epoch_and_are_deterministic():
    src = SelfSupervisedSource("title", [f"q{i}" for i in range(20)], [f"P{i}" for i in range(20)],
                               neighbour_pools(np.eye(20, dtype=np.float32) + 0.01, 10))

    def judged(seed):
        return [Group("j", "judged query", [0, 1, 2], "qrels")]

    e0, e0b, e1 = (epoch_groups(judged, [(src, 8)], 3, 13, e) for e in (0, 0, 1))
    key = [(g.query, tuple(g.texts or g.docs)) for g in e0]
    assert key == [(g.query, tuple(g.texts or g.docs)) for g in e0b]
    assert key != [(g.query, tuple(g.texts or g.docs)) for g in e1]
    assert sum(g.source == "qrels" for g in e0) == 1 and sum(g.source == "title" for g in e0) == 8


def test_ict_source_pairs_a_sentence_with_the_rest_of_its_document(synthetic_beir):
    from model_building.training.data import load_beir, sentences

    ds = load_beir(synthetic_beir)
    emb = np.random.default_rng(0).normal(size=(len(ds.doc_ids), 8)).astype(np.float32)
    src = ict_source(ds, emb, 5, exclude_docs={0, 1}, seed=3)
    assert src.name == "ict" and len(src.queries) == len(ds.doc_ids) - 2 and src.pools.shape == (len(src.queries), 5)
    kept = 0
    for q, p, i in zip(src.queries, src.passages, range(2, len(ds.doc_ids))):
        assert q in sentences(ds.bodies[i]) and p.startswith(ds.titles[i])
        kept += q in p
        # whichever way, the other sentences of the document are all in the positive
        assert all(s in p for s in sentences(ds.bodies[i]) if s != q)
    assert 0 < kept < len(src.queries) // 2  # the sentence mostly leaves its passage (10% stay)
    again = ict_source(ds, emb, 5, exclude_docs={0, 1}, seed=3)
    assert (again.queries, again.passages) == (src.queries, src.passages)
    assert ict_source(ds, emb, 5, exclude_docs={0, 1}, seed=4).queries != src.queries


def test_ict_source_skips_documents_with_fewer_than_three_sentences():
    from types import SimpleNamespace

    ds = SimpleNamespace(doc_ids=["a", "b"], titles=["A", "B"],
                         bodies=["Only one sentence of enough words lives here.",
                                 "First sentence has six words here. Second sentence has six words too. "
                                 "Third sentence has six words again."])
    src = ict_source(ds, np.eye(2, dtype=np.float32), 1, exclude_docs=set())
    assert len(src.queries) == 1 and src.passages[0].startswith("B ")


def test_held_out_documents_never_feed_self_supervised_groups(synthetic_beir, fake_encoder, tmp_path):
    from model_building.training.data import load_beir
    from model_building.training.embeddings import EmbeddingCache
    from model_building.training.reranker_pipeline import self_supervised_sources

    ds = load_beir(synthetic_beir)
    cache = EmbeddingCache(fake_encoder, tmp_path / "c", show_progress=False)
    d_emb = cache.embed(ds.doc_texts)
    cfg = RerankerTrainConfig(title_groups=50, ict_groups=40, esco_groups=0)
    dev = ["q0", "q1"]
    sources = self_supervised_sources(ds, d_emb, cache, cfg, dev)
    assert [(src.name, n) for src, n in sources] == [("title", 50), ("ict", 40)]
    held = {d for q in dev for d in ds.split("train")[q]} | {d for docs in ds.split("test").values() for d in docs}
    held_idx = {ds.doc_ids.index(d) for d in held}
    assert held_idx
    for src, _ in sources:
        # neither a held-out title or sentence as a query, nor a held-out body inside a passage
        assert not {ds.titles[i] for i in held_idx} & set(src.queries)
        assert not any(p.startswith(ds.titles[i] + " ") for i in held_idx for p in src.passages if src.name == "ict")
        assert not {ds.bodies[i] for i in held_idx} & set(src.passages)


def test_config_rejects_an_unknown_architecture_and_tiny_groups():
    with pytest.raises(ValueError, match="architecture"):
        RerankerTrainConfig(architecture="colbert")
    with pytest.raises(ValueError, match="group_size"):
        RerankerTrainConfig(group_size=1)
    with pytest.raises(ValueError, match="cycles"):
        RerankerTrainConfig(cycles=0)


def test_freezing_keeps_the_lowest_layers_and_embeddings_fixed(tiny_bert):
    from model_building.training.reranker import _freeze

    m = sce.from_encoder(tiny_bert)
    total = sum(p.numel() for p in m.parameters())
    left = _freeze(m, 1)
    assert 0 < left < total
    assert not any(p.requires_grad for p in m.bert.embeddings.parameters())
    assert not any(p.requires_grad for p in m.bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in m.bert.encoder.layer[1].parameters())
    assert m.scale.requires_grad and m.head.weight.requires_grad
    with pytest.raises(ValueError, match="freeze_layers"):
        _freeze(sce.from_encoder(tiny_bert), 3)
