"""The one train/dev split of judged queries.

Every trained model (concept head, reranker, their domain banks), every later re-measurement of one, and the
fusion tuning through the cluster hold out the same queries: a seeded shuffle of the sorted query ids, the first
``fraction`` of them as dev. Defaults are the shipped models' (15%, seed 13).
"""

from __future__ import annotations

import random
from typing import Any

DEV_FRACTION = 0.15
DEV_SEED = 13


def split_dev(qids: list[str], fraction: float = DEV_FRACTION, seed: int = DEV_SEED) -> tuple[list[str], list[str]]:
    """(train, dev) query ids, each sorted; deterministic for the same ids, fraction and seed, whatever their order.
    A positive fraction of two or more ids holds out at least one."""
    q = sorted(qids)
    random.Random(seed).shuffle(q)
    n_dev = round(len(q) * fraction) if fraction > 0 else 0
    if fraction > 0 and len(q) >= 2:
        n_dev = max(1, n_dev)
    return sorted(q[n_dev:]), sorted(q[:n_dev])


def train_dev_queries(ds: Any, dev_fraction: float = DEV_FRACTION, dev_seed: int = DEV_SEED,
                      limit_queries: int | None = None) -> tuple[list[str], list[str]]:
    """(train, dev) query ids of a training run on ``ds``'s train split (``ds.split("train")`` and ``ds.queries``):
    the queries of the train qrels that have a text, optionally a seeded sample of ``limit_queries`` of them."""
    train_all = sorted(q for q in ds.split("train") if q in ds.queries)
    if limit_queries is not None:
        random.Random(dev_seed).shuffle(train_all)
        train_all = sorted(train_all[:limit_queries])
    return split_dev(train_all, dev_fraction, dev_seed)
