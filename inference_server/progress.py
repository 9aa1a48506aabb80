"""Progress for long work (concept builds, exports): a tqdm bar on a terminal, log lines otherwise.

Why both: an operator at a terminal wants a bar; a supervisor tailing the server log (e.g.
``sesa up`` waiting for SERVING) needs plain lines it can show.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

log = logging.getLogger("inference_server.progress")


def progress(total: int, desc: str, every_fraction: float = 0.1) -> Callable[[int], None]:
    """Return ``update(n)``; call it with the number of items just finished."""
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=desc, unit="text", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

            def update_bar(n: int) -> None:
                bar.update(n)
                if bar.n >= total:
                    bar.close()

            return update_bar
        except ImportError:  # pragma: no cover
            pass
    state = {"done": 0, "next": max(1, int(total * every_fraction)), "t0": time.perf_counter()}

    def update_log(n: int) -> None:
        state["done"] += n
        if state["done"] >= state["next"] or state["done"] >= total:
            el = time.perf_counter() - state["t0"]
            rate = state["done"] / el if el > 0 else 0.0
            eta = (total - state["done"]) / rate if rate > 0 else 0.0
            log.info("%s: %d/%d (%.0f%%), %.0f/s, eta %.0fs", desc, state["done"], total,
                     100.0 * state["done"] / max(total, 1), rate, eta)
            state["next"] = state["done"] + max(1, int(total * every_fraction))

    return update_log
