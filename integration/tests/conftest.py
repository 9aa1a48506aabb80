"""The real stack for the end-to-end suite: a real OpenSearch node with k-NN and our plugin, and a real
inference server with real models. No mocks here.

By default the suite brings the embedded stack up itself (the same code as `sesa up`, on SESA_TEST_PORT
(default 9200) and SESA_TEST_SERVER_PORT (default 50051)) and stops what it started. SESA_TEST_CLUSTER_URL / SESA_TEST_SERVER point it at an existing stack instead. In CI
(SESA_REQUIRE_E2E=1) a stack that cannot come up fails the run instead of skipping it.

The suite's server reranks with the cross-encoder this repository ships (models/, the same default as
`sesa up`). SESA_TEST_RERANKER=DIR picks another one, =none runs the server without a reranker, and =tiny
gives it a tiny random-initialised cross-encoder (built and exported here, no download); the tests check
that the order follows the server's scores, not that the scores are good.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass
class Stack:
    url: str
    server_address: str
    started_here: bool
    # how the suite brought the embedded stack up (None: an external cluster), e.g. to restart its node
    options: object | None = None

    def client(self):
        from integration.cluster.stack import opensearch_client

        return opensearch_client(self.url)


def _require() -> bool:
    return os.environ.get("SESA_REQUIRE_E2E", "") not in ("", "0", "false")


def _server_args(paths) -> tuple[str, ...]:
    """The suite's server as `sesa up` starts it: its reranker, then its concept space (SESA_TEST_CONCEPT_SPACE picks
    another one, as `sesa up --concept-space` does)."""
    from integration.cli import concept_space_args

    return _reranker_args(paths) + concept_space_args(os.environ.get("SESA_TEST_CONCEPT_SPACE", "auto"))


def _reranker_args(paths) -> tuple[str, ...]:
    choice = os.environ.get("SESA_TEST_RERANKER", "")
    if not choice:
        from inference_server.paths import shipped_reranker_dir

        shipped = shipped_reranker_dir()
        return ("--reranker", str(shipped)) if shipped else ()
    if choice == "none":
        return ()
    if choice != "tiny":
        return ("--reranker", choice)
    from tests.support.inference import make_tiny_bert

    target = paths.home / "test-models" / "tiny-reranker"
    if not (target / "config.json").is_file():
        make_tiny_bert(target, classification=True, seed=3)
    return ("--reranker", str(target))


@pytest.fixture(scope="session")
def stack():
    from integration.cluster import node, server_process
    from integration.cluster import stack as stack_mod
    from integration.cluster.paths import state_paths

    url = os.environ.get("SESA_TEST_CLUSTER_URL")
    options = None
    server_port = int(os.environ.get("SESA_TEST_SERVER_PORT", "50051"))
    server = os.environ.get("SESA_TEST_SERVER", f"127.0.0.1:{server_port}")
    paths = state_paths()
    already = node.running_node(paths) is not None and server_process.running_server(paths) is not None
    try:
        if url:
            stack_mod.up(stack_mod.UpOptions(cluster_url=url, start_server=False, server_address=server))
        else:
            options = stack_mod.UpOptions(port=int(os.environ.get("SESA_TEST_PORT", "9200")),
                                          server_port=server_port, server_args=_server_args(paths))
            summary = stack_mod.up(options)
            url = summary["node"]["url"]
    except Exception as exc:  # noqa: BLE001
        if _require():
            pytest.fail(f"the end-to-end stack could not come up: {exc}")
        pytest.skip(f"end-to-end stack unavailable (set SESA_REQUIRE_E2E=1 to fail instead): {exc}")
    started_here = not already and not os.environ.get("SESA_TEST_CLUSTER_URL")
    yield Stack(url=url, server_address=server, started_here=started_here, options=options)
    if started_here and not os.environ.get("SESA_KEEP_STACK"):
        stack_mod.down(paths)


@pytest.fixture(scope="session")
def os_client(stack):
    return stack.client()


@pytest.fixture
def managed_server(stack):
    """(paths, state, restart args) of the inference server this suite's `sesa up` state manages, so a
    fault test can stop it and start it again with the same arguments."""
    from pathlib import Path

    from integration.cluster import server_process
    from integration.cluster.paths import state_paths

    paths = state_paths()
    state = server_process.running_server(paths)
    if state is None or state.address != stack.server_address:
        message = f"the inference server at {stack.server_address} is not managed by this suite's state (sesa up)"
        if _require() and not os.environ.get("SESA_TEST_SERVER"):
            pytest.fail(message)
        pytest.skip(message)
    args: list[str] = []
    try:
        argv = [a.decode() for a in Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0") if a]
        rest = argv[argv.index("serve") + 1:] if "serve" in argv else []
        skip = False
        for a in rest:  # keep everything but --host/--port, which start() sets itself
            if skip:
                skip = False
                continue
            if a in ("--host", "--port"):
                skip = True
                continue
            args.append(a)
    except (OSError, ValueError):
        args = []
    return paths, state, tuple(args)


@pytest.fixture
def server_with_env(managed_server):
    """Restart the suite's inference server with extra SESA_SERVER_* environment (fault injection, small
    queues) and without the command-line options named in ``drop`` (each with its value, e.g. ``--reranker``);
    the original server comes back when the test ends. Usage: ``server_with_env({"...": "..."})``."""
    from integration.cluster import server_process

    paths, state, args = managed_server
    host, port = state.address.rsplit(":", 1)
    changed: list[bool] = []

    def restart(env: dict[str, str], drop: tuple[str, ...] = ()) -> None:
        kept: list[str] = []
        it = iter(args)
        for a in it:
            if a in drop:
                next(it, None)  # its value
            else:
                kept.append(a)
        server_process.stop(paths)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            server_process.start(paths, host, int(port), None, extra_args=tuple(kept))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        changed.append(True)

    yield restart
    if changed:
        server_process.stop(paths)
        server_process.start(paths, host, int(port), None, extra_args=args)
