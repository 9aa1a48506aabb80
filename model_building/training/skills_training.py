"""``sesa-server train skills``: the ESCO skill space trained on ESCO's own supervision (issue 18).

What is learned
    The same head as the zero-shot ``esco-skills`` pack: one row per skill, a text's concepts are
    ``top_k(relu(W e))`` on the frozen encoder's L2-normalised embedding ``e`` (so the dense vector and the
    serving path do not change). Only the rows W move, starting from the zero-shot rows (the embeddings of
    the package texts), so that the skills a text is annotated with come first.

Objective
    Softmax cross-entropy over all skills of ``scale * W e``, the target spread evenly over the text's skills
    (a sentence may name several), plus ``anchor * mean_c ||W_c - a_c||^2`` with ``a_c`` the zero-shot row, so
    a row stays near the text that names it (its label keeps meaning it).

Supervision (ESCO's, never a test split)
    * every preferred and alternative label of a skill, and its description -> that skill
      (``skills.jsonl`` of an ESCO export with separate fields);
    * SkillSkape's synthetic job-ad sentences (``skillskape/train.jsonl``) -> their skills;
    * an occupation's label and description -> its essential skills (``occupation-skills.jsonl``: ESCO's expert
      links), except the occupations of the profiles' dev queries (``profiles/``, the train qrels split by
      :func:`ir.splits.split_dev`): profile -> occupation matching is measured on those;
    * the real job-ad sentences of the TECH / HOUSE ``dev`` qrels of ``postings/`` (source ``postings``, weight 10:
      136 sentences beside 118k synthetic or dictionary texts, and the only ones written by employers).
    Selection (epochs, literal boost): the mean R-Precision@5 over the dev sets, SkillSkape ``dev`` and the TECH /
    HOUSE ``dev`` sentences. As the latter are also trained on, they are cross-fitted: the dev sentences are cut in
    two folds by their text (:func:`fold_of`), a run trains on one fold and is measured on the other, each way, and
    the epoch count and boost with the best mean over both runs are those of the final run on every dev sentence.
    The dev figures of the manifest are the held-out folds' (``cross_fitted``). The test qrels are only reported.

Assignment
    The artifact asks the server for segment pooling of queries (``assignment`` in its manifest): a query's
    concepts are each concept's strongest weight over the whole text and its segments (list items, sentences,
    lines), so a profile that lists fifteen skills maps to those skills, not to the one point between them.
    ``--segment-kinds query,passage`` pools documents too (ingest then encodes every sentence again). Epoch
    selection and every measurement score texts the way the artifact serves them. Literal evidence: a concept
    whose label or alias a text names word for word gets a boost on top of its weight; the boost is chosen on the
    dev sets among ``literal_boosts`` with the trained rows.

The artifact is a trained concept space (``matrix.npy`` + ``concepts.jsonl`` + ``manifest.json``) over the
installed package's skills, served by naming its directory (``models.concept_space`` or
``models.extra_concept_spaces``); its manifest records the recipe, the data and every measurement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from inference_server.runtime.concept_head import PhraseIndex
from model_building.training.recipe import RecipeConfig

log = logging.getLogger(__name__)

DEFAULT_NAME = "esco-skills-sesa-esco"
SOURCES = ("label", "alias", "description", "skillskape", "occupation", "postings")
DEV_FOLDS = 2  # cross-fitting folds of the dev sentences that are also trained on (source "postings")


@dataclass
class SkillsTrainConfig(RecipeConfig):
    epochs: int = 4
    lr: float = 2e-3
    scale: float = 10.0
    anchor: float = 0.25
    batch_size: int = 1024
    # weight of each supervision source in the loss (0 leaves it out)
    # (postings: 10, the dev sentences' weight; 136 of them beside 118k examples)
    source_weights: dict[str, float] = field(default_factory=lambda: {s: 1.0 for s in SOURCES} | {"postings": 10.0})
    top_k: int = 32
    # segment pooling of the served space (its manifest's assignment): concepts are the strongest weights over a
    # text and up to this many of its segments (list items, sentences, lines); 0 = the whole text only
    max_segments: int = 32
    # the texts that pool: queries only by default (profiles -> occupations through the cluster, 225 dev queries:
    # concepts alone 0.416 pooling queries, 0.408 pooling both, and ingest keeps its speed)
    segment_kinds: tuple[str, ...] = ("query",)
    # literal evidence (a label or alias the text names): the boosts tried on the dev sets; the best is shipped
    literal_boosts: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)
    limit_skills: int | None = None  # only the first N skills of the package (tiny runs)
    seed: int = 13
    threads: int = 2

    @classmethod
    def tiny(cls) -> SkillsTrainConfig:
        return cls(epochs=2, batch_size=64, limit_skills=300)


@dataclass
class Example:
    text: str
    skills: tuple[int, ...]  # row indices
    source: str


@dataclass
class LabelledSet:
    """Texts with annotated skills (row indices) for selection or reporting."""

    name: str
    texts: list[str]
    skills: list[frozenset[int]]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def esco_examples(esco_dir: Path, row_of: dict[str, int]) -> list[Example]:
    """Labels, alternative labels and descriptions of ``skills.jsonl`` -> their skill (a text that names two
    skills is kept once, with both)."""
    by_text: dict[tuple[str, str], set[int]] = {}
    for r in _read_jsonl(esco_dir / "skills.jsonl"):
        row = row_of.get(r["id"])
        if row is None:
            continue
        texts = [("label", r.get("label", ""))] + [("alias", a) for a in r.get("aliases") or []]
        texts.append(("description", r.get("description", "")))
        for source, text in texts:
            text = " ".join((text or "").split())
            if text:
                by_text.setdefault((source, text), set()).add(row)
    out, seen = [], set()
    for (source, text), rows in by_text.items():
        key = text.lower()
        if source == "alias" and key in seen:  # an alias that repeats a label adds nothing
            continue
        seen.add(key)
        out.append(Example(text, tuple(sorted(rows)), source))
    return out


def held_out_occupations(esco_dir: Path) -> set[str]:
    """The occupations judged for the dev queries of ``profiles/``'s train split (kept out of training)."""
    from ir.beir import Dataset
    from ir.splits import split_dev

    if not (esco_dir / "profiles").is_dir():
        return set()
    qrels = Dataset(esco_dir / "profiles").qrels("train")
    _, dev = split_dev(sorted(qrels))
    return {occ for q in dev for occ, g in qrels[q].items() if g > 0}


def occupation_examples(esco_dir: Path, row_of: dict[str, int]) -> list[Example]:
    """An occupation's label and description -> its essential skills, for the occupations ESCO links and the
    profiles' dev queries do not judge."""
    links, occupations = esco_dir / "occupation-skills.jsonl", esco_dir / "occupations.jsonl"
    if not (links.is_file() and occupations.is_file()):
        return []
    held_out = held_out_occupations(esco_dir)
    # as an index of the occupations holds them: title and text joined by the pipeline's separator
    text_of = {r["id"]: f"{r.get('label', '')}\n{r.get('description', '')}".strip() for r in _read_jsonl(occupations)}
    out = []
    for r in _read_jsonl(links):
        occ = r["occupation"]
        rows = tuple(sorted({row_of[s] for s in r.get("essential") or [] if s in row_of}))
        if occ in held_out or not rows or not text_of.get(occ):
            continue
        out.append(Example(text_of[occ], rows, "occupation"))
    return out


def skillskape_set(esco_dir: Path, split: str, row_of: dict[str, int]) -> LabelledSet:
    texts, skills = [], []
    for r in _read_jsonl(esco_dir / "skillskape" / f"{split}.jsonl"):
        rows = frozenset(row_of[i] for i in r.get("ids") or [] if i in row_of)
        if rows and r.get("text", "").strip():
            texts.append(" ".join(r["text"].split()))
            skills.append(rows)
    return LabelledSet(f"skillskape-{split}", texts, skills)


def postings_set(esco_dir: Path, split: str, row_of: dict[str, int]) -> LabelledSet:
    """One qrels split of ``postings/`` (BEIR layout: queries = sentences, corpus = skills)."""
    from ir.beir import Dataset

    ds = Dataset(esco_dir / "postings")
    texts, skills = [], []
    for qid, rel in sorted(ds.qrels(split).items()):
        rows = frozenset(row_of[c] for c, g in rel.items() if g > 0 and c in row_of)
        if rows and qid in ds.queries:
            texts.append(ds.queries[qid])
            skills.append(rows)
    return LabelledSet(f"postings-{split}", texts, skills)


def fold_of(text: str) -> int:
    """A dev sentence's cross-fitting fold, fixed by its text: a rerun, or a set in another order, splits alike."""
    return zlib.crc32(text.encode("utf-8")) % DEV_FOLDS


def fold(s: LabelledSet, f: int, *, held_out: bool) -> LabelledSet:
    """The texts of ``s`` in fold ``f`` (``held_out``) or in the other folds (the part trained on)."""
    keep = [i for i, t in enumerate(s.texts) if (fold_of(t) == f) == held_out]
    return LabelledSet(f"{s.name}-fold{f}" + ("" if held_out else "-train"), [s.texts[i] for i in keep],
                       [s.skills[i] for i in keep])


def rp_at(scores: np.ndarray, relevant: Sequence[frozenset[int]], k: int = 5) -> float:
    """Mean R-Precision@k of score rows [n, concepts] (the literature's |top-k ∩ rel| / min(k, |rel|))."""
    from ir.metrics import r_precision_at

    kk = min(k, scores.shape[1])
    top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    vals = []
    for i, rel in enumerate(relevant):
        ranked = [str(j) for j in top[i][np.argsort(-scores[i, top[i]])]]
        vals.append(r_precision_at(ranked, {str(j) for j in rel}, k))
    return float(np.mean(vals)) if vals else 0.0


@dataclass
class SegmentedTexts:
    """Embeddings of texts and of their segments (the server's :func:`concept_segments`), so that measurements
    score a text the way a space with segment pooling serves it."""

    whole: np.ndarray  # [n, dim]
    parts: np.ndarray  # [m, dim]
    owner: np.ndarray  # [m] text index of each segment

    @classmethod
    def embed(cls, texts: list[str], cache: Any, max_segments: int, desc: str) -> SegmentedTexts:
        from inference_server.runtime.concept_head import concept_segments

        segments = [concept_segments(t, max_segments) if max_segments else [] for t in texts]
        flat = [seg for segs in segments for seg in segs]
        owner = np.array([i for i, segs in enumerate(segments) for _ in segs], dtype=np.int64)
        whole = cache.embed(texts, query=False, desc=desc)
        parts = cache.embed(flat, query=False, desc=f"{desc} segments") if flat else np.zeros((0, whole.shape[1]),
                                                                                             np.float32)
        return cls(whole, parts, owner)

    def scores(self, w: np.ndarray) -> np.ndarray:
        """Concept weights [n, concepts]: relu(W e), each concept's strongest over the text and its segments."""
        s = np.maximum(self.whole @ w.T, 0.0)
        if len(self.owner):
            np.maximum.at(s, self.owner, np.maximum(self.parts @ w.T, 0.0))
        return s


def train_rows(anchor: np.ndarray, x: np.ndarray, targets: Sequence[Sequence[int]], weights: np.ndarray,
               cfg: SkillsTrainConfig, on_epoch: Callable[[int, np.ndarray], float] | None = None,
               keep_last: bool = False) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Fit W from ``anchor`` on embeddings ``x`` with target rows; ``on_epoch(epoch, W)`` returns the dev score
    (higher is better), and the epoch with the best one is returned (the anchor itself counts as epoch 0), or the
    last epoch with ``keep_last`` (its count chosen beforehand)."""
    import torch

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    a = torch.tensor(anchor, dtype=torch.float32)
    w = torch.nn.Parameter(a.clone())
    opt = torch.optim.Adam([w], lr=cfg.lr)
    xt = torch.tensor(x, dtype=torch.float32)
    wt = torch.tensor(weights, dtype=torch.float32)
    n = len(targets)
    history = []
    best_w, best = anchor.copy(), on_epoch(0, anchor) if on_epoch else float("-inf")
    history.append({"epoch": 0, "dev": best})
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        start, total, steps = time.monotonic(), 0.0, 0
        perm = torch.randperm(n, generator=gen)
        for b in range(0, n, cfg.batch_size):
            idx = perm[b: b + cfg.batch_size]
            logp = torch.log_softmax(cfg.scale * (xt[idx] @ w.T), dim=1)
            rows, cols, vals = [], [], []
            for j, i in enumerate(idx.tolist()):
                t = targets[i]
                rows.extend([j] * len(t))
                cols.extend(t)
                vals.extend([1.0 / len(t)] * len(t))
            target = torch.zeros_like(logp)
            target[rows, cols] = torch.tensor(vals)
            ce = -(target * logp).sum(dim=1)
            bw = wt[idx]
            loss = (ce * bw).sum() / bw.sum().clamp_min(1e-12) + cfg.anchor * ((w - a) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        current = w.detach().numpy().copy()
        dev = on_epoch(epoch, current) if on_epoch else float(epoch)
        history.append({"epoch": epoch, "loss": round(total / max(steps, 1), 4), "dev": dev,
                        "seconds": round(time.monotonic() - start, 1)})
        log.info("epoch %d: loss %.4f, dev RP@5 %.4f (%.0fs)", epoch, total / max(steps, 1), dev, time.monotonic() - start)
        if dev > best or keep_last:
            best, best_w = dev, current
    return best_w, history


def train_skills(esco_dir: str | Path, out: str | Path | None = None, cfg: SkillsTrainConfig | None = None, *,
                 name: str = DEFAULT_NAME, cache_dir: str | Path | None = None, show_progress: bool = True,
                 command: str = "", encoder: Any = None, vocabulary: tuple[list, dict] | None = None
                 ) -> dict[str, Any]:
    """Train, write the artifact and return its manifest (metrics included). ``encoder`` and ``vocabulary``
    ((entries, pack metadata)) default to the server's encoder and the installed package's skills."""
    from model_building.concept_packs.esco import esco_skills_vocab
    from model_building.training.concept_head_training import truthfulness, write_trained_artifact
    from model_building.training.concepts_pipeline import zero_shot_rows
    from model_building.training.embeddings import EmbeddingCache, load_server_encoder

    cfg = cfg or SkillsTrainConfig()
    esco = Path(esco_dir).expanduser()
    for need in ("skills.jsonl", "skillskape/train.jsonl"):
        if not (esco / need).is_file():
            raise FileNotFoundError(f"{esco} lacks {need}: pass the ESCO data folder (skills.jsonl, skillskape/, postings/)")
    entries, pack_meta = vocabulary or esco_skills_vocab(limit=cfg.limit_skills)
    row_of = {e.id: i for i, e in enumerate(entries)}
    encoder = encoder or load_server_encoder()
    cache = EmbeddingCache(encoder, cache_dir, show_progress=show_progress)
    # the served zero-shot rows when they are the whole package's (the server's cached artifact), else embedded
    pack = "esco-skills" if vocabulary is None and cfg.limit_skills is None else "esco-skills-subset"
    anchor = zero_shot_rows(entries, pack, encoder, cache)

    examples = esco_examples(esco, row_of) + occupation_examples(esco, row_of)
    train_ss = skillskape_set(esco, "train", row_of)
    examples += [Example(t, tuple(sorted(s)), "skillskape") for t, s in zip(train_ss.texts, train_ss.skills)]
    examples = [e for e in examples if cfg.source_weights.get(e.source, 0.0) > 0]
    if not examples:
        raise ValueError("no training example: every source weight is 0 or no skill id matched the package")
    counts = {s: sum(e.source == s for e in examples) for s in SOURCES}
    log.info("training examples: %s", counts)
    x = cache.embed([e.text for e in examples], query=False, desc="ESCO training texts")

    dev_sets = [skillskape_set(esco, "dev", row_of)]
    test_sets = []
    if (esco / "postings").is_dir():
        from ir.beir import Dataset

        splits = Dataset(esco / "postings").splits()
        dev_sets += [postings_set(esco, s, row_of) for s in splits if s.startswith("dev")]
        test_sets += [postings_set(esco, s, row_of) for s in splits if s.startswith("test")]
    dev_sets = [s for s in dev_sets if s.texts]
    test_sets = [s for s in test_sets if s.texts]
    trained_dev = [s for s in dev_sets if s.name.startswith("postings-")] \
        if cfg.source_weights.get("postings", 0.0) > 0 else []
    folds = ([(f, [fold(s, f, held_out=True) for s in trained_dev], [fold(s, f, held_out=False) for s in trained_dev])
              for f in range(DEV_FOLDS)] if trained_dev else [])
    if any(not h.texts for _, held, _ in folds for h in held):
        log.warning("a fold of the dev sentences is empty: they are not trained on, only used to select")
        trained_dev, folds = [], []
    # the labelled texts are encoded as documents (passages), as ingest assigns concepts
    passage_segments = cfg.max_segments if "passage" in cfg.segment_kinds else 0
    phrases = PhraseIndex([[e.label, *e.aliases] for e in entries])
    views: dict[str, SegmentedTexts] = {}
    named: dict[str, list[list[int]]] = {}
    for s in dev_sets + test_sets + [h for _, held, _ in folds for h in held]:
        views[s.name] = SegmentedTexts.embed(s.texts, cache, passage_segments, s.name)
        # literal evidence: the concepts whose label or alias the text names word for word
        named[s.name] = [sorted(phrases.mentions(t)) for t in s.texts]

    def scored(name: str, m: np.ndarray, boost: float) -> np.ndarray:
        scores = views[name].scores(m)
        for i, rows in enumerate(named[name]):
            scores[i, rows] += boost
        return scores

    def selection(sets: Sequence[LabelledSet], m: np.ndarray) -> dict[float, float]:
        """Mean RP@5 over ``sets`` for each literal boost tried, with rows ``m`` as the server reads them."""
        served = np.asarray(m, dtype=np.float16).astype(np.float32)
        return {b: float(np.mean([rp_at(scored(s.name, served, b), s.skills) for s in sets])) if sets else 0.0
                for b in sorted({0.0, *cfg.literal_boosts})}  # no boost (0.0) scores the epochs

    def run(extra: Sequence[LabelledSet], sets: Sequence[LabelledSet], epochs: int | None = None
            ) -> tuple[np.ndarray, list[dict[str, float]], dict[int, dict[float, float]], dict[int, np.ndarray]]:
        """Train with ``extra`` dev sentences beside the examples; every epoch scored on ``sets`` (all boosts)."""
        added = [Example(t, tuple(sorted(k)), "postings") for s in extra for t, k in zip(s.texts, s.skills)]
        xs = np.concatenate([x, cache.embed([e.text for e in added], query=False, desc="dev sentences")]) if added else x
        weights = np.array([cfg.source_weights[e.source] for e in examples + added], dtype=np.float32)
        by_epoch: dict[int, dict[float, float]] = {}
        rows: dict[int, np.ndarray] = {}

        def on_epoch(epoch: int, m: np.ndarray) -> float:
            by_epoch[epoch] = selection(sets, m)
            rows[epoch] = m
            return by_epoch[epoch][0.0]

        run_cfg = cfg if epochs is None else SkillsTrainConfig(**(asdict(cfg) | {"epochs": epochs}))
        w, history = train_rows(anchor, xs, [e.skills for e in examples + added], weights, run_cfg, on_epoch,
                                keep_last=epochs is not None or not sets)  # nothing to select on: the last epoch
        return w, history, by_epoch, rows

    others = [s for s in dev_sets if s not in trained_dev]
    cross_fitted: dict[str, Any] = {}  # the manifest's record of the cross-fitting
    held_out: list[tuple[list[LabelledSet], np.ndarray]] = []  # per fold: its held-out dev sets, its run's rows
    if folds:
        # cross-fitting: each run trains on one fold of the dev sentences and is scored on the other (and SkillSkape)
        fitted = [run(train_part, others + held) for _, held, train_part in folds]
        mean = {(e, b): float(np.mean([f[2][e][b] for f in fitted])) for e in fitted[0][2] for b in fitted[0][2][e]}
        epochs, boost = max(mean, key=lambda eb: (round(mean[eb], 6), -eb[0], -eb[1]))
        literal = {b: mean[(epochs, b)] for b in fitted[0][2][epochs]}
        log.info("cross-fitted on the dev sentences: %d epochs, literal boost %.2f (mean dev RP@5 %.4f)",
                 epochs, boost, mean[(epochs, boost)])
        # its dev score is SkillSkape dev's alone: the dev sentences are all trained on now
        w, final_history, _, _ = run(trained_dev, others, epochs=epochs)
        history = [{"fold": f, **h} for (f, _, _), (_, hist, _, _) in zip(folds, fitted) for h in hist]
        history += [{"fold": "all", **h} for h in final_history]
        cross_fitted = {"epochs": epochs,
                        "by_epoch_and_boost": {f"{e}/{b}": round(v, 4) for (e, b), v in mean.items()}}
        held_out = [(held, np.asarray(rows[epochs], dtype=np.float16).astype(np.float32))
                    for (_, held, _), (_, _, _, rows) in zip(folds, fitted)]
    else:
        w, history, by_epoch, _ = run([], dev_sets)
        best_epoch = max(by_epoch, key=lambda e: (by_epoch[e][0.0], -e))
        literal = by_epoch[best_epoch]
        # ties: the smaller boost
        boost = max(literal, key=lambda b: (round(literal[b], 6), -b))
    log.info("literal boost %.2f (dev RP@5 by boost: %s)", boost, {b: round(v, 4) for b, v in literal.items()})
    served = np.asarray(w, dtype=np.float16).astype(np.float32)  # what the server will read

    def measure(s: LabelledSet, m: np.ndarray, boost: float) -> dict[str, float]:
        from ir.metrics import evaluate_concepts

        scores = scored(s.name, m, boost)
        top = np.argsort(-scores, axis=1)[:, :max(cfg.top_k, 10)]
        rankings = {str(i): [str(j) for j in top[i] if scores[i, j] > 0] for i in range(len(s.texts))}
        qrels = {str(i): {str(j): 1 for j in rel} for i, rel in enumerate(s.skills)}
        ev = evaluate_concepts(qrels, rankings)
        return {k: round(v, 4) for k, v in ev.mean.items()} | {"texts": ev.queries}

    def metrics(m: np.ndarray, boost: float, sets: Sequence[LabelledSet]) -> dict[str, dict[str, float]]:
        return {s.name: measure(s, m, boost) for s in sets}

    def held_out_metrics(boost: float) -> dict[str, dict[str, float]]:
        """Each trained dev set measured text by text with the run that did not train on the text's fold."""
        out = {}
        for j, s in enumerate(trained_dev):
            parts = [(held[j], m) for held, m in held_out]
            per = [measure(h, m, boost) for h, m in parts]
            n = sum(p["texts"] for p in per)
            out[s.name] = {k: round(sum(p[k] * p["texts"] for p in per) / max(n, 1), 4)
                           for k in per[0] if k != "texts"} | {"texts": n}
        return out

    final_sets = others + test_sets if folds else dev_sets + test_sets
    measured = {"zero_shot": metrics(anchor, 0.0, dev_sets + test_sets),
                "trained_without_literal": metrics(served, 0.0, final_sets), "trained": metrics(served, boost, final_sets)}
    if folds:  # the trained dev sentences: their held-out folds
        measured["trained_without_literal"] |= held_out_metrics(0.0)
        measured["trained"] |= held_out_metrics(boost)
    assignment = ({"pool": "segments", "max_segments": cfg.max_segments, "kinds": list(cfg.segment_kinds)}
                  if cfg.max_segments else {"pool": "whole text"}) | {"literal_boost": boost}
    extra = {
        # the version names the assignment too: the same rows served another way give other concepts
        "version_prefix": "esco-" + hashlib.sha256(json.dumps(assignment, sort_keys=True).encode()).hexdigest()[:6],
        "assignment": assignment,
        "literal_boost_dev_rp@5": {str(b): round(v, 4) for b, v in literal.items()},
        "base_vocabulary": {"name": "esco-skills", **pack_meta, "size": len(entries)},
        "licence": f"{pack_meta.get('licence', 'see base_vocabulary')}; SkillSkape training sentences: MIT (Magron et al. 2024); "
                   "trained head: Apache-2.0 (opensearch-sesa)",
        "recipe": {
            "objective": "softmax CE over scale * W e against the text's annotated skills (spread evenly) "
                         "+ anchor * mean_c ||W_c - a_c||^2",
            "encoder_frozen": True,
            "init": "zero-shot rows (normalised embeddings of the package texts)",
            "config": asdict(cfg),
            "command": command,
            "selection": ("epoch count and literal boost with the best mean RP@5 over " + ", ".join(s.name for s in dev_sets)
                          + (f", the trained dev sentences cross-fitted over {DEV_FOLDS} folds (fold_of: crc32 of the "
                             "text); the final run trains on all of them" if folds else "")),
            **({"cross_fitted": cross_fitted} if folds else {}),
        },
        "data": {"esco_dir": str(esco), "examples": counts | {"postings": sum(len(s.texts) for s in trained_dev)},
                 "dev": [s.name for s in dev_sets], "dev_trained_on": [s.name for s in trained_dev],
                 "occupations_held_out": len(held_out_occupations(esco)),
                 "reported_only": [s.name for s in test_sets]},
        "history": history,
        "metrics": measured,
        "truthfulness": {"trained": truthfulness(served, anchor)},
    }
    target = Path(out) if out else Path("models") / name
    write_trained_artifact(target, w, entries, encoder.meta, name=name,
                           passage_max_tokens=encoder.max_tokens(False), extra=extra)
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    log.info("wrote %s (%s)", target, manifest["version"])
    return manifest
