"""Where the embedded stack keeps its files.

The node runs as an unprivileged user, so when we are root the state must live outside /root
(which that user cannot traverse): /var/lib/opensearch-sesa. Other users get
~/.local/share/opensearch-sesa. `SESA_HOME` overrides both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_home() -> Path:
    if os.environ.get("SESA_HOME"):
        return Path(os.environ["SESA_HOME"]).expanduser().resolve()
    if os.geteuid() == 0:
        return Path("/var/lib/opensearch-sesa")
    return Path.home() / ".local" / "share" / "opensearch-sesa"


@dataclass(frozen=True)
class StatePaths:
    home: Path

    @property
    def dist(self) -> Path:
        """Unpacked OpenSearch distributions with k-NN installed, one folder per assembly key."""
        return self.home / "dist"

    @property
    def node(self) -> Path:
        return self.home / "node"

    @property
    def node_data(self) -> Path:
        return self.node / "data"

    @property
    def node_logs(self) -> Path:
        return self.node / "logs"

    @property
    def node_pid(self) -> Path:
        return self.node / "opensearch.pid"

    @property
    def node_state(self) -> Path:
        """JSON written by `up`: which home, port and user the running node uses."""
        return self.node / "state.json"

    @property
    def server(self) -> Path:
        return self.home / "server"

    @property
    def server_pid(self) -> Path:
        return self.server / "server.pid"

    @property
    def server_log(self) -> Path:
        return self.server / "server.log"

    @property
    def server_state(self) -> Path:
        return self.server / "state.json"

    @property
    def models(self) -> Path:
        return self.home / "models"


def state_paths() -> StatePaths:
    return StatePaths(default_home())


def shared_data_dir() -> Path:
    """SESA_DATA_DIR, else the `shared/data` folder beside the checkout (where the evaluation sets live)."""
    from .. import schemas

    return Path(os.environ.get("SESA_DATA_DIR") or schemas.repo_root().parent / "shared" / "data")
