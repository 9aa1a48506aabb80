"""Resolve release artifacts (OpenSearch distribution, k-NN plugin zip) from Maven Central with `mvn`.

Maven's local repository is the download cache, so a second resolution is offline and instant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .errors import SesaError


def local_repository() -> Path:
    override = os.environ.get("SESA_MAVEN_REPO")
    return Path(override) if override else Path.home() / ".m2" / "repository"


def artifact_path(coordinate: str) -> Path:
    """Path of `group:artifact:version[:type]` inside the local repository."""
    parts = coordinate.split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"bad Maven coordinate {coordinate!r}: expected group:artifact:version[:type]")
    group, artifact, version = parts[:3]
    packaging = parts[3] if len(parts) == 4 else "jar"
    return (
        local_repository() / Path(*group.split(".")) / artifact / version / f"{artifact}-{version}.{packaging}"
    )


def resolve(coordinate: str, java_home: Path | None = None) -> Path:
    """Download the artifact if it is not cached yet; return its local path."""
    path = artifact_path(coordinate)
    if path.is_file():
        return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SesaError(f"Maven (mvn) is needed to download {coordinate}: install it (apt-get install maven)")
    env = dict(os.environ)
    if java_home is not None:
        env["JAVA_HOME"] = str(java_home)
    cmd = [mvn, "-B", "-q", "dependency:get", f"-Dartifact={coordinate}", "-Dtransitive=false"]
    if os.environ.get("SESA_MAVEN_REPO"):
        cmd.append(f"-Dmaven.repo.local={local_repository()}")
    print(f"downloading {coordinate} from Maven Central ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise SesaError(f"could not download {coordinate} with Maven: {' | '.join(tail)}")
    return path
