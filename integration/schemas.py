"""Access to `schemas/`: the one source of names, versions and OpenSearch JSON shared with the plugin.

The Java plugin bundles the same files at build time; nothing here copies their values.
"""

from __future__ import annotations

import copy
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parent.parent


def schemas_dir() -> Path:
    """`SESA_SCHEMAS_DIR` if set, else the `schemas/` folder of this checkout."""
    override = os.environ.get("SESA_SCHEMAS_DIR")
    path = Path(override) if override else _REPO_ROOT / "schemas"
    if not (path / "opensearch" / "conventions.json").is_file():
        raise FileNotFoundError(
            f"schemas folder not found at {path}: set SESA_SCHEMAS_DIR to the project's schemas/ folder"
        )
    return path


def repo_root() -> Path:
    return _REPO_ROOT


def load_json(name: str) -> dict[str, Any]:
    """A JSON file of schemas/opensearch/, with `_doc` keys (comments) removed."""
    with open(schemas_dir() / "opensearch" / name, encoding="utf-8") as fh:
        return _strip_doc(json.load(fh))


def sesa_encode_options(pipeline: dict[str, Any]) -> dict[str, Any] | None:
    """The options of the first `sesa_encode` processor of an ingest pipeline body (the dict itself, so a caller may
    change them in place), or None when it has none."""
    for processor in pipeline.get("processors", []):
        if "sesa_encode" in processor:
            return processor["sesa_encode"]
    return None


def encode_processor() -> dict[str, Any]:
    """The shipped `sesa-ingest` pipeline's `sesa_encode` options (a fresh copy): separator, chunking, ..."""
    return sesa_encode_options(load_json("ingest-pipeline.json"))


def _strip_doc(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_doc(v) for k, v in value.items() if k != "_doc"}
    if isinstance(value, list):
        return [_strip_doc(v) for v in value]
    return value


@lru_cache(maxsize=1)
def conventions() -> dict[str, Any]:
    return load_json("conventions.json")


def field_names(prefix: str | None = None) -> dict[str, str]:
    """Target field names the `sesa_encode` processor writes for a prefix, e.g. {'dense': 'sesa_dense'}."""
    conv = conventions()
    prefix = prefix or conv["default_target_prefix"]
    return {role: prefix + suffix for role, suffix in conv["field_suffixes"].items()}


def text_field_prefix(field: str) -> str:
    """Target prefix of a ``sesa_text`` field's sub-fields: ``body`` -> ``body_sesa`` (``body_sesa_dense`` ...)."""
    return field + conventions()["sesa_text_target_suffix"]


def render(template: Any, values: dict[str, Any]) -> Any:
    """Replace string leaves of the exact form '{{name}}' by values[name] (any JSON type)."""
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str) and template.startswith("{{") and template.endswith("}}"):
        key = template[2:-2].strip()
        if key not in values:
            raise KeyError(f"template placeholder {template!r} has no value")
        return copy.deepcopy(values[key])
    return template


# "as the shipped `sesa-ingest` pipeline cuts texts" where a chunking option is asked for
SHIPPED = "shipped"


def chunking_meta(chunking: Any = SHIPPED) -> dict[str, Any]:
    """``_meta.sesa.chunking`` of an index fed by the ``sesa_encode`` target: how its documents are cut into windows
    (``"shipped"``: as the shipped `sesa-ingest` pipeline cuts them; None: ``"off"``, texts encoded whole; else the
    ``chunking`` option itself). `sesa_encode` refuses documents cut another way (the plugin's chunking guard)."""
    if chunking == SHIPPED:
        chunking = encode_processor().get("chunking")
    return {conventions()["default_target_prefix"]: "off" if chunking is None else dict(chunking)}


def chunking_arg(text: str | None) -> dict[str, Any] | None:
    """A ``--chunking`` argument: absent, the shipped pipeline's option; ``off``, none (texts encoded whole); else a
    JSON object, ``sesa_encode``'s option (the plugin checks its keys and ranges)."""
    from .cluster.errors import SesaError

    if text is None:
        return encode_processor().get("chunking")
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SesaError(f"--chunking must be 'off' or a JSON object such as '{{}}' or '{{\"overlap_tokens\": 32}}': "
                        f"{exc}") from None
    if not isinstance(value, dict):
        raise SesaError(f"--chunking must be 'off' or a JSON object such as '{{}}', got {text!r}")
    return value


def index_template(dense_dimension: int, models_meta: dict[str, Any]) -> dict[str, Any]:
    return render(
        load_json("index-template.json"),
        {"dense_dimension": int(dense_dimension), "models_meta": models_meta, "chunking_meta": chunking_meta()},
    )
