"""Training the SESA concept head: a frozen encoder, a learned matrix W, sparse top-k retrieval.

What is learned
    Only the head matrix W [concepts x dim] (initialised with the zero-shot rows: the normalised
    embeddings of the concepts' descriptions). The encoder is frozen, so the dense vector the
    server returns is unchanged. A text's concept vector is exactly what the server computes:
    ``v(e) = top_k(relu(W e))`` on the L2-normalised pooled embedding ``e``.

Objective (per batch of B (query, positive document) pairs, H hard negatives each)
    * ranking: softmax cross-entropy of ``scale * v(q) . v(d)`` over the batch's positives
      (in-batch negatives) and the hard negatives; documents that are positives of the row's
      query are masked out. ``scale`` is a learned temperature (not shipped: ranking and
      min-max fusion do not depend on it).
    * sparsity: ``l1 * mean_batch sum_c relu(W e)_c`` (L1 on the activations before top-k), so
      the mass concentrates in the k kept concepts.
    * truthfulness: ``anchor * sum_c ||W_c - a_c||^2 / dim`` with ``a_c`` the concept's
      description embedding, so a row keeps meaning its label.
    Top-k is applied in training too (``train_top_k``; gradients flow through the kept entries).

Data
    Supervised pairs from the training qrels (never test), self-supervised title->document and
    inverse-cloze sentence->document pairs from the corpus, hard negatives mined from the dense
    and BM25 top results of each training query. A share of the training queries is held out
    (``dev_fraction``) for epoch selection and for choosing the fusion weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_building.training.recipe import RecipeConfig

from ir.splits import DEV_FRACTION, DEV_SEED

log = logging.getLogger(__name__)


@dataclass
class ConceptTrainConfig(RecipeConfig):
    vocab: str = "esco-skills"
    vocab_limit: int | None = None
    top_k: int = 32  # inference top-k (the server's concepts.default_top_k)
    train_top_k: int = 64
    epochs: int = 8
    batch_size: int = 128
    lr: float = 3e-3
    hard_negatives: int = 2
    hard_pool: int = 30
    l1: float = 2e-3
    anchor: float = 3.0
    init_scale: float = 5.0
    n_title: int = 4000
    n_ict: int = 4000
    supervised_repeat: int = 3
    dev_fraction: float = DEV_FRACTION
    limit_docs: int | None = None
    limit_queries: int | None = None
    seed: int = 13
    dev_seed: int = DEV_SEED  # the held-out split stays fixed when --seed changes
    threads: int = 2

    @classmethod
    def tiny(cls) -> ConceptTrainConfig:
        return cls(vocab_limit=300, epochs=1, batch_size=16, n_title=16, n_ict=16, supervised_repeat=1,
                   limit_docs=120, limit_queries=40, hard_pool=10, dev_fraction=0.25, train_top_k=32)


# --- losses (pure torch; unit-tested) ---------------------------------------------------------------


def sparse_top_k(acts: Any, k: int) -> Any:
    """Keep the k largest activations per row (others 0); gradients flow through the kept ones."""
    import torch

    if k >= acts.shape[1]:
        return acts
    _, idx = acts.topk(k, dim=1)
    mask = torch.zeros_like(acts).scatter_(1, idx, 1.0)
    return acts * mask


def concept_activations(w: Any, emb: Any) -> Any:
    """relu(W e) for a batch of embeddings [B, dim] -> [B, N]."""
    import torch

    return torch.relu(emb @ w.T)


def ranking_loss(q: Any, docs: Any, positive_mask: Any, scale: Any) -> Any:
    """Cross-entropy of scaled dot products; row i's target is column i.

    ``q`` [B, N] query vectors, ``docs`` [B + M, N] (the B positives first, then M negatives),
    ``positive_mask`` [B, B + M] bool: True where column j is *a* positive of row i other than
    column i (masked out, so a shared positive is never a negative).
    """
    import torch

    logits = scale * (q @ docs.T)
    logits = logits.masked_fill(positive_mask, float("-inf"))
    target = torch.arange(q.shape[0], device=q.device)
    return torch.nn.functional.cross_entropy(logits, target)


def l1_regulariser(acts: Any) -> Any:
    """Mean over the batch of the L1 norm of the (non-negative) activations."""
    return acts.abs().sum(dim=1).mean()


def anchor_regulariser(w: Any, anchor: Any) -> Any:
    """Squared distance of every row to its concept's description embedding, summed / dim."""
    return ((w - anchor) ** 2).sum() / w.shape[1]


# --- data -------------------------------------------------------------------------------------------


@dataclass
class TrainingSet:
    q_emb: np.ndarray  # [P, dim] query embedding per pair
    pos: np.ndarray  # [P] positive doc index
    positives: list[frozenset[int]]  # all positives of the pair's query
    hard: list[np.ndarray]  # hard-negative pool per pair
    source: list[str]
    counts: dict[str, int] = field(default_factory=dict)


def mine_hard_negatives(q_emb: np.ndarray, d_emb: np.ndarray, positives: list[frozenset[int]], pool: int,
                        bm25_lists: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per query: the top ``pool`` dense (and BM25) results that are not positives."""
    from model_building.training.retrieval import top_k_rows

    out = []
    for s in range(0, len(q_emb), 512):
        idx, _ = top_k_rows(q_emb[s:s + 512] @ d_emb.T, pool + 8)
        for j in range(idx.shape[0]):
            i = s + j
            cand = [int(d) for d in idx[j] if int(d) not in positives[i]][:pool]
            if bm25_lists is not None and bm25_lists[i] is not None:
                cand += [int(d) for d in bm25_lists[i][:pool] if int(d) not in positives[i] and int(d) not in cand]
            out.append(np.asarray(cand, dtype=np.int64))
    return out


# --- the trainer ------------------------------------------------------------------------------------


def _dev_eval(w: Any, q_emb: np.ndarray, qids: list[str], d_emb_t: Any, qrels: dict, doc_ids: list[str],
              k: int) -> float:
    """nDCG@10 of the concept branch for held-out queries (exact search, inference top-k)."""
    import torch

    from model_building.training.retrieval import mean_ndcg

    with torch.no_grad():
        qv = sparse_top_k(concept_activations(w, torch.from_numpy(q_emb)), k)
        sims = torch.cat([qv @ sparse_top_k(concept_activations(w, d_emb_t[s:s + 1024]), k).T
                          for s in range(0, d_emb_t.shape[0], 1024)], dim=1).numpy()
    run = {}
    for i, q in enumerate(qids):
        idx = np.argsort(-sims[i], kind="stable")[:10]
        run[q] = (idx, sims[i][idx])
    return mean_ndcg(qrels, run, doc_ids)


def train_head(anchor: np.ndarray, d_emb: np.ndarray, ts: TrainingSet, cfg: ConceptTrainConfig,
               dev: tuple[np.ndarray, list[str], dict, list[str]] | None = None,
               log_every: int = 20) -> tuple[np.ndarray, dict[str, Any]]:
    """Train W from ``anchor``; returns (best W by dev nDCG@10, history)."""
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    rng = np.random.default_rng(cfg.seed)
    a = torch.from_numpy(np.ascontiguousarray(anchor, dtype=np.float32))
    w = torch.nn.Parameter(a.clone())
    log_scale = torch.nn.Parameter(torch.tensor(math.log(cfg.init_scale)))
    opt = torch.optim.Adam([w, log_scale], lr=cfg.lr)
    d_t = torch.from_numpy(np.ascontiguousarray(d_emb, dtype=np.float32))
    q_t = torch.from_numpy(np.ascontiguousarray(ts.q_emb, dtype=np.float32))
    n = len(ts.pos)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total_steps = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total_steps // 20)) * max(0.1, 1 - s / max(1, total_steps)))
    history: dict[str, Any] = {"epochs": [], "steps": total_steps}
    best = (-1.0, anchor.copy(), 0)
    if dev is not None:
        base = _dev_eval(a, dev[0], dev[1], d_t, dev[2], dev[3], cfg.top_k)
        history["dev_ndcg10_zero_shot"] = round(base, 4)
        best = (base, anchor.copy(), 0)
        log.info("dev nDCG@10 zero-shot %.4f", base)
    step = 0
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        perm = rng.permutation(n)
        sums = {"loss": 0.0, "rank": 0.0, "l1": 0.0, "anchor": 0.0}
        for b in range(steps_per_epoch):
            rows = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if len(rows) < 2:
                continue
            pos = ts.pos[rows]
            negs = []
            for r in rows:
                pool = ts.hard[r]
                if len(pool) and cfg.hard_negatives:
                    negs.extend(rng.choice(pool, size=min(cfg.hard_negatives, len(pool)), replace=False).tolist())
            cols = np.concatenate([pos, np.asarray(negs, dtype=np.int64)])
            mask = np.zeros((len(rows), len(cols)), dtype=bool)
            for i, r in enumerate(rows):
                pset = ts.positives[r]
                for j, c in enumerate(cols):
                    if j != i and int(c) in pset:
                        mask[i, j] = True
            acts_q = concept_activations(w, q_t[rows])
            acts_d = concept_activations(w, d_t[torch.from_numpy(cols)])
            vq = sparse_top_k(acts_q, cfg.train_top_k)
            vd = sparse_top_k(acts_d, cfg.train_top_k)
            rank = ranking_loss(vq, vd, torch.from_numpy(mask), log_scale.exp())
            l1 = l1_regulariser(torch.cat([acts_q, acts_d]))
            anc = anchor_regulariser(w, a)
            loss = rank + cfg.l1 * l1 + cfg.anchor * anc
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            for k_, v_ in (("loss", loss), ("rank", rank), ("l1", l1), ("anchor", anc)):
                sums[k_] += float(v_.detach())
            if log_every and step % log_every == 0:
                log.info("step %d/%d loss %.4f rank %.4f l1 %.2f anchor %.4f scale %.2f (%.1fs)", step, total_steps,
                         loss.item(), rank.item(), l1.item(), anc.item(), log_scale.exp().item(),
                         time.perf_counter() - t0)
        ep = {k_: round(v_ / steps_per_epoch, 5) for k_, v_ in sums.items()}
        ep["epoch"] = epoch
        ep["seconds"] = round(time.perf_counter() - t0, 1)
        if dev is not None:
            ep["dev_ndcg10"] = round(_dev_eval(w.detach(), dev[0], dev[1], d_t, dev[2], dev[3], cfg.top_k), 4)
            if ep["dev_ndcg10"] > best[0]:
                best = (ep["dev_ndcg10"], w.detach().numpy().copy(), epoch)
        else:
            best = (0.0, w.detach().numpy().copy(), epoch)
        history["epochs"].append(ep)
        log.info("epoch %d: %s", epoch, ep)
    history["best_epoch"] = best[2]
    history["train_seconds"] = round(time.perf_counter() - t0, 1)
    history["scale"] = round(log_scale.exp().item(), 4)
    return best[1].astype(np.float32), history


# --- truthfulness -----------------------------------------------------------------------------------


def truthfulness(w: np.ndarray, anchor: np.ndarray, sample: int = 2000, seed: int = 0) -> dict[str, float]:
    """How well rows still mean their labels: cos(row, own description) and self-retrieval@1
    (the row's nearest description embedding is its own) on a random sample of rows."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(w), size=min(sample, len(w)), replace=False)
    wn = w[idx] / np.maximum(np.linalg.norm(w[idx], axis=1, keepdims=True), 1e-12)
    an = anchor / np.maximum(np.linalg.norm(anchor, axis=1, keepdims=True), 1e-12)
    own = np.einsum("ij,ij->i", wn, an[idx])
    sims = wn @ an.T
    top1 = sims.argmax(axis=1) == idx
    return {"mean_cos_to_description": round(float(own.mean()), 4),
            "min_cos_to_description": round(float(own.min()), 4),
            "self_retrieval_at_1": round(float(top1.mean()), 4),
            "rows_sampled": len(idx)}


def label_agreement(w: np.ndarray, anchor: np.ndarray, emb: np.ndarray, k: int = 32, top: int = 5) -> dict[str, float]:
    """Whether the labels a text gets still describe it, measured on texts ``emb``:

    * ``desc_cos_top5``: mean cosine between a text and the descriptions of its ``top`` concepts
      (the zero-shot head maximises this by construction);
    * ``top5_in_zero_shot_top32``: share of the trained top-5 concepts that the zero-shot head
      also puts in the text's top-k;
    * ``top32_overlap``: overlap of the trained and zero-shot top-k sets.
    """
    an = anchor / np.maximum(np.linalg.norm(anchor, axis=1, keepdims=True), 1e-12)
    out = {"desc_cos_top5": [], "top5_in_zero_shot_top32": [], "top32_overlap": []}
    zs_desc = []
    for s in range(0, len(emb), 256):
        e = emb[s:s + 256]
        tr = np.argsort(-(e @ w.T), axis=1)[:, :k]
        zs = np.argsort(-(e @ an.T), axis=1)[:, :k]
        for i in range(len(e)):
            out["desc_cos_top5"].append(float(np.mean(an[tr[i, :top]] @ e[i])))
            zs_desc.append(float(np.mean(an[zs[i, :top]] @ e[i])))
            zset = set(zs[i].tolist())
            out["top5_in_zero_shot_top32"].append(len(set(tr[i, :top].tolist()) & zset) / top)
            out["top32_overlap"].append(len(set(tr[i].tolist()) & zset) / k)
    res = {key: round(float(np.mean(v)), 4) for key, v in out.items()}
    res["desc_cos_top5_zero_shot"] = round(float(np.mean(zs_desc)), 4)
    res["texts"] = len(emb)
    return res


# --- the artifact -----------------------------------------------------------------------------------


def write_trained_artifact(out_dir: str | Path, w: np.ndarray, entries: list, encoder_meta: Any, *,
                           name: str, passage_max_tokens: int, extra: dict[str, Any]) -> Path:
    """Write matrix.npy (float16) + concepts.jsonl + manifest.json in the layout ConceptHead.load reads."""
    from inference_server.paths import publish_dir
    from inference_server.runtime.concept_head import ARTIFACT_CONCEPTS, ARTIFACT_MANIFEST, ARTIFACT_MATRIX
    from model_building.concept_packs.build import rows_sha256 as rows_sha256

    out = Path(out_dir).expanduser()
    m16 = np.ascontiguousarray(w.astype(np.float16))
    matrix_sha = hashlib.sha256(m16.tobytes()).hexdigest()
    rows_sha = rows_sha256(entries)
    version = f"{extra.get('version_prefix', 'trained')}-{hashlib.sha256((matrix_sha + rows_sha).encode()).hexdigest()[:10]}"
    extra = {k: v for k, v in extra.items() if k != "version_prefix"}
    manifest = {
        "format_version": 1,
        "kind": "trained",
        "name": name,
        "version": version,
        "size": int(w.shape[0]),
        "dimension": int(w.shape[1]),
        "matrix_file": ARTIFACT_MATRIX,
        "matrix_dtype": "float16",
        "concepts_file": ARTIFACT_CONCEPTS,
        "matrix_sha256": matrix_sha,
        "concepts_sha256": rows_sha,
        "encoder": {"id": encoder_meta.model_id, "version": encoder_meta.version, "source": encoder_meta.source},
        "text_max_tokens": passage_max_tokens,
        "weight": "max(W_c . e, 0) on the L2-normalised encoder embedding e, top-k per text (trained W)",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        np.save(tmp / ARTIFACT_MATRIX, m16, allow_pickle=False)
        with open(tmp / ARTIFACT_CONCEPTS, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"key": e.key, "id": e.id, "label": e.label, "parent": e.parent,
                                    "aliases": e.aliases, "description": e.description}, ensure_ascii=False) + "\n" for e in entries)
        files = {}
        for fn in (ARTIFACT_MATRIX, ARTIFACT_CONCEPTS):
            from inference_server.paths import sha256_file

            files[fn] = {"sha256": sha256_file(tmp / fn), "bytes": (tmp / fn).stat().st_size}
        manifest["files"] = files
        (tmp / ARTIFACT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        publish_dir(tmp, out)  # mkdtemp makes 0700; the artifact is shipped and read by other users
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def config_dict(cfg: ConceptTrainConfig) -> dict[str, Any]:
    return asdict(cfg)
