"""Assemble an OpenSearch home: the integ-test-zip distribution + k-NN + our plugin, installed the way an
operator would (`bin/opensearch-plugin install`), cached so a second `sesa up` is fast.

The base (distribution + k-NN) is unpacked once per version pair; our plugin is reinstalled only when its
zip changes (tracked by sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import schemas
from .errors import SesaError
from .maven import resolve
from .paths import StatePaths

PLUGIN_MARKER = ".sesa-plugin.json"
BASE_MARKER = ".sesa-base.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unzip_preserving_modes(archive: Path, dest: Path) -> None:
    """zipfile drops Unix permissions (bin/opensearch must stay executable); restore them."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            if not str(target.resolve()).startswith(str(dest.resolve())):
                raise SesaError(f"refusing to unpack {info.filename!r} outside {dest}")
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


@dataclass(frozen=True)
class Assembly:
    home: Path
    opensearch_version: str
    knn_version: str
    plugin_sha256: str | None


def _plugin_cli(home: Path, java_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENSEARCH_JAVA_HOME=str(java_home), JAVA_HOME=str(java_home))
    env.pop("OPENSEARCH_JAVA_OPTS", None)
    return subprocess.run(
        [str(home / "bin" / "opensearch-plugin"), *args], capture_output=True, text=True, env=env
    )


def _install_plugin(home: Path, java_home: Path, zip_path: Path) -> None:
    proc = _plugin_cli(home, java_home, "install", "--batch", zip_path.resolve().as_uri())
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        raise SesaError(f"opensearch-plugin install {zip_path.name} failed: {' | '.join(out[-4:])}")


def assemble_base(paths: StatePaths, java_home: Path) -> Path:
    """Unpacked distribution with k-NN installed; reused when already there."""
    conv = schemas.conventions()
    os_version, knn_version = conv["opensearch_version"], conv["knn_plugin_version"]
    home = paths.dist / f"opensearch-{os_version}-knn-{knn_version}"
    marker = home / BASE_MARKER
    if marker.is_file():
        return home
    artifacts = {
        name: resolve(coord.format(opensearch_version=os_version, knn_plugin_version=knn_version), java_home)
        for name, coord in conv["maven_artifacts"].items()
    }
    staging = home.with_name(home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    print(f"unpacking OpenSearch {os_version} ...", flush=True)
    unzip_preserving_modes(artifacts["distribution"], staging)
    inner = staging / f"opensearch-{os_version}"
    if not (inner / "bin" / "opensearch").is_file():
        raise SesaError(f"{artifacts['distribution']} does not look like an OpenSearch distribution")
    missing = [m for m in conv["required_modules"] if not (inner / "modules" / m).is_dir()]
    if missing:
        raise SesaError(f"the OpenSearch distribution lacks the modules {missing}; cannot assemble a node")
    print(f"installing k-NN {knn_version} ...", flush=True)
    _install_plugin(inner, java_home, artifacts["knn_plugin"])
    if list(inner.rglob("libopensearchknn*")):
        print("note: k-NN native libraries are present; the template still pins the lucene engine")
    shutil.rmtree(home, ignore_errors=True)
    inner.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(json.dumps({"opensearch": os_version, "knn": knn_version}))
    return home


def installed_plugin_sha(home: Path) -> str | None:
    marker = home / PLUGIN_MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text()).get("sha256")


def install_sesa_plugin(home: Path, java_home: Path, plugin_zip: Path) -> str:
    """(Re)install our plugin if the zip differs from the installed one; returns its sha256."""
    if not plugin_zip.is_file():
        raise SesaError(f"plugin zip {plugin_zip} not found: build it with `plugin/build.sh -DskipTests`")
    digest = sha256_file(plugin_zip)
    if installed_plugin_sha(home) == digest and (home / "plugins" / "opensearch-sesa").is_dir():
        return digest
    if (home / "plugins" / "opensearch-sesa").exists():
        proc = _plugin_cli(home, java_home, "remove", "opensearch-sesa")
        if proc.returncode != 0:
            shutil.rmtree(home / "plugins" / "opensearch-sesa", ignore_errors=True)
    print(f"installing {plugin_zip.name} ...", flush=True)
    _install_plugin(home, java_home, plugin_zip)
    (home / PLUGIN_MARKER).write_text(json.dumps({"sha256": digest, "zip": str(plugin_zip)}))
    return digest


def assemble(paths: StatePaths, java_home: Path, plugin_zip: Path) -> Assembly:
    conv = schemas.conventions()
    home = assemble_base(paths, java_home)
    digest = install_sesa_plugin(home, java_home, plugin_zip)
    return Assembly(home, conv["opensearch_version"], conv["knn_plugin_version"], digest)


def make_tree_owned_by(root: Path, uid: int, gid: int) -> None:
    """chown -R without following symlinks (the node user must own its home, data and logs)."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid, follow_symlinks=False)
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            try:
                os.chown(p, uid, gid, follow_symlinks=False)
            except FileNotFoundError:
                pass


def check_traversable(path: Path, user: str) -> None:
    """Fail early, with advice, when an unprivileged node user could not reach its own files."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise SesaError(
                f"the node runs as user {user!r}, which cannot enter {parent}: "
                "set SESA_HOME to a folder outside it (e.g. /var/lib/opensearch-sesa)"
            )
