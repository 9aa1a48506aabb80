"""Find a JDK that can run OpenSearch 3.x (Java 21+) and build the plugin."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .errors import SesaError

MIN_JAVA = 21
_CANDIDATE_ROOTS = ("/usr/lib/jvm", "/opt/java", "/usr/local/lib/jvm")


def java_major(java_home: Path) -> int | None:
    """Major version of `java_home/bin/java`, or None if it does not run."""
    exe = java_home / "bin" / "java"
    if not exe.is_file():
        return None
    try:
        out = subprocess.run([str(exe), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java_home() -> Path:
    """OPENSEARCH_JAVA_HOME, then JAVA_HOME, then the newest JDK >= 21 under the usual roots."""
    for var in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(var)
        if value:
            major = java_major(Path(value))
            if major is not None and major >= MIN_JAVA:
                return Path(value)
            if var == "OPENSEARCH_JAVA_HOME":
                raise SesaError(
                    f"OPENSEARCH_JAVA_HOME={value} is not a Java {MIN_JAVA}+ JDK "
                    f"(found {major or 'no java'}): point it at a JDK {MIN_JAVA} or newer"
                )
    found: list[tuple[int, Path]] = []
    for root in _CANDIDATE_ROOTS:
        base = Path(root)
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if child.is_symlink():
                continue
            major = java_major(child)
            if major is not None and major >= MIN_JAVA:
                found.append((major, child))
    if not found:
        raise SesaError(
            f"no Java {MIN_JAVA}+ JDK found (OpenSearch 3.x needs one): install e.g. a Temurin 21 or 25 JDK "
            "and set OPENSEARCH_JAVA_HOME to it"
        )
    found.sort()
    return found[-1][1]
