"""Fast unit tests of the concept-head objective and the reranker losses (torch, tiny tensors)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ir.splits import split_dev
from model_building.training.concept_head_training import (
    anchor_regulariser,
    concept_activations,
    l1_regulariser,
    mine_hard_negatives,
    ranking_loss,
    sparse_top_k,
    truthfulness,
)
from model_building.training.reranker import listwise_loss, pointwise_bce


def test_sparse_top_k_keeps_the_k_largest_and_routes_gradients_only_there():
    acts = torch.tensor([[0.1, 0.9, 0.0, 0.5], [0.3, 0.2, 0.8, 0.7]], requires_grad=True)
    v = sparse_top_k(acts, 2)
    assert np.allclose(v.detach().numpy(), [[0.0, 0.9, 0.0, 0.5], [0.0, 0.0, 0.8, 0.7]])
    v.sum().backward()
    assert acts.grad.tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert sparse_top_k(acts, 10) is acts  # k >= width: unchanged


def test_activations_are_relu_of_the_head_product():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    e = torch.tensor([[0.6, -0.8]])
    assert np.allclose(concept_activations(w, e).numpy(), [[0.6, 0.0, 0.0]])


def test_ranking_loss_prefers_the_positive_and_masks_shared_positives():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    docs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    none = torch.zeros(2, 3, dtype=torch.bool)
    good = ranking_loss(q, docs, none, torch.tensor(10.0))
    swapped = ranking_loss(q, docs[[1, 0, 2]], none, torch.tensor(10.0))
    assert float(good) < float(swapped)
    # by hand: row 0 logits 10*(1, 0, 0.7) -> CE = -log softmax[0]
    l0 = -math.log(math.exp(10) / (math.exp(10) + 1 + math.exp(7)))
    l1 = -math.log(math.exp(10) / (1 + math.exp(10) + math.exp(7)))
    assert float(good) == pytest.approx((l0 + l1) / 2, rel=1e-5)
    # column 2 is also a positive of row 0: masking removes it from row 0's softmax
    mask = torch.tensor([[False, False, True], [False, False, False]])
    m0 = -math.log(math.exp(10) / (math.exp(10) + 1))
    assert float(ranking_loss(q, docs, mask, torch.tensor(10.0))) == pytest.approx((m0 + l1) / 2, rel=1e-5)


def test_ranking_loss_gradient_reaches_the_head_matrix():
    w = torch.nn.Parameter(torch.eye(3))
    e = torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.1], [0.1, 0.0, 1.0]])
    v = sparse_top_k(concept_activations(w, e), 2)
    loss = ranking_loss(v, v, torch.zeros(3, 3, dtype=torch.bool), torch.tensor(5.0))
    loss.backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0


def test_l1_regulariser_is_the_mean_row_l1_norm_and_pushes_activations_down():
    acts = torch.tensor([[0.5, 0.0, 0.25], [1.0, 1.0, 0.0]], requires_grad=True)
    r = l1_regulariser(acts)
    assert r.item() == pytest.approx((0.75 + 2.0) / 2)
    r.backward()
    assert np.allclose(acts.grad.numpy(), [[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])


def test_anchor_regulariser_is_zero_at_the_anchor_and_pulls_rows_back():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.nn.Parameter(a.clone())
    assert anchor_regulariser(w, a).item() == 0.0
    with torch.no_grad():
        w[0, 0] = 2.0
    r = anchor_regulariser(w, a)
    assert r.item() == pytest.approx(1.0 / 2)  # squared distance 1, divided by dim 2
    r.backward()
    assert w.grad[0, 0] > 0 and float(w.grad[1].abs().sum()) == 0.0


def test_listwise_and_pointwise_losses_reward_a_high_positive():
    good = torch.tensor([5.0, 0.0, 0.0, 0.0, 4.0, -1.0, -1.0, -1.0])
    bad = torch.tensor([0.0, 5.0, 0.0, 0.0, -1.0, 4.0, -1.0, -1.0])
    assert float(listwise_loss(good, 4)) < float(listwise_loss(bad, 4))
    assert float(pointwise_bce(good, 4)) < float(pointwise_bce(bad, 4))


def test_hard_negatives_exclude_positives_and_add_bm25_candidates():
    d = np.eye(6, dtype=np.float32)
    q = np.array([[1, 0.5, 0.2, 0, 0, 0]], dtype=np.float32)
    out = mine_hard_negatives(q, d, [frozenset({0})], pool=2, bm25_lists=[np.array([0, 5, 1])])
    assert 0 not in out[0].tolist()
    assert out[0].tolist()[:2] == [1, 2] and 5 in out[0].tolist()


def test_truthfulness_of_the_zero_shot_rows_is_perfect():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 8)).astype(np.float32)
    t = truthfulness(a, a, sample=50)
    assert t["self_retrieval_at_1"] == 1.0 and t["mean_cos_to_description"] == pytest.approx(1.0)
    t2 = truthfulness(rng.normal(size=(50, 8)).astype(np.float32), a, sample=50)
    assert t2["self_retrieval_at_1"] < 0.5


def test_dev_split_is_deterministic_and_disjoint():
    q = [f"q{i}" for i in range(20)]
    tr, dev = split_dev(q, 0.25, seed=3)
    assert (tr, dev) == split_dev(list(reversed(q)), 0.25, seed=3)
    assert len(dev) == 5 and not set(tr) & set(dev) and sorted(tr + dev) == sorted(q)


def test_train_head_is_deterministic_and_moves_rows_towards_the_task():
    from model_building.training.concept_head_training import ConceptTrainConfig, TrainingSet, train_head

    rng = np.random.default_rng(0)
    anchor = rng.normal(size=(12, 6)).astype(np.float32)
    anchor /= np.linalg.norm(anchor, axis=1, keepdims=True)
    docs = rng.normal(size=(10, 6)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    q = docs + 0.1 * rng.normal(size=docs.shape).astype(np.float32)
    ts = TrainingSet(q, np.arange(10), [frozenset([i]) for i in range(10)],
                     [np.array([(i + 1) % 10, (i + 2) % 10]) for i in range(10)], ["qrels"] * 10)
    cfg = ConceptTrainConfig(epochs=2, batch_size=5, top_k=4, train_top_k=4, hard_negatives=1, threads=1)
    w1, h1 = train_head(anchor, docs, ts, cfg, log_every=0)
    w2, _ = train_head(anchor, docs, ts, cfg, log_every=0)
    assert np.array_equal(w1, w2) and h1["steps"] == 4
    assert not np.allclose(w1, anchor) and len(h1["epochs"]) == 2
