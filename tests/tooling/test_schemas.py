"""The JSON of schemas/ is the one source both sides use: check it is consistent and safe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integration import schemas


def _walk(value, path=""):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}")
        yield path, value


def test_every_knn_vector_pins_the_lucene_engine():
    """The 3.x default engine (faiss) needs native libraries that the Maven k-NN zip does not ship."""
    found = 0
    for name in sorted((schemas.schemas_dir() / "opensearch").glob("*.json")):
        for path, node in _walk(schemas.load_json(name.name)):
            if node.get("type") == "knn_vector":
                found += 1
                method = node.get("method", {})
                assert method.get("engine") == "lucene", f"{name.name}{path} must set engine lucene"
                assert method.get("name") == "hnsw", f"{name.name}{path}"
                assert "mode" not in node and "compression_level" not in node, f"{name.name}{path}"
    assert found >= 1


def test_template_fields_follow_the_conventions():
    conv = schemas.conventions()
    props = schemas.index_template(384, {})["template"]["mappings"]["properties"]
    fields = schemas.field_names()
    assert props[fields["dense"]]["type"] == "knn_vector"
    assert props[fields["dense"]]["dimension"] == 384
    assert props[fields["concepts"]]["type"] == "rank_features"
    assert props[fields["concept_labels"]]["type"] == "keyword"
    assert props[fields["truncated"]]["type"] == "boolean"
    assert props[fields["status"]]["type"] == "keyword"
    assert set(props[fields["model"]]["properties"]) == {"dense", "concepts"}
    template = schemas.load_json("index-template.json")
    assert template["index_patterns"] == [conv["default_index_pattern"]]
    assert template["template"]["settings"]["default_pipeline"] == conv["default_ingest_pipeline"]


def test_render_fills_placeholders_with_typed_values_and_rejects_unknown_ones():
    rendered = schemas.render({"a": "{{n}}", "b": ["{{m}}", "x"]}, {"n": 3, "m": {"k": 1}})
    assert rendered == {"a": 3, "b": [{"k": 1}, "x"]}
    with pytest.raises(KeyError):
        schemas.render({"a": "{{missing}}"}, {})


def test_ingest_pipeline_targets_the_default_prefix():
    pipeline = schemas.load_json("ingest-pipeline.json")
    (processor,) = pipeline["processors"]
    assert set(processor["sesa_encode"]["field_map"].values()) == {schemas.conventions()["default_target_prefix"]}


def test_plugin_pom_targets_the_opensearch_version_of_the_conventions():
    pom = Path(schemas.repo_root(), "plugin", "pom.xml")
    if not pom.is_file():
        pytest.fail("plugin/pom.xml is missing")
    text = pom.read_text()
    match = re.search(r"<opensearch\.version>([^<]+)</opensearch\.version>", text)
    assert match, "plugin/pom.xml must define the property opensearch.version"
    assert match.group(1) == schemas.conventions()["opensearch_version"]


def test_search_pipeline_blends_rerank_with_the_weight_the_shipped_reranker_was_tuned_for():
    """The pipeline's rerank_weight is the shipped model's dev-chosen blend (one number, two files: keep them equal
    when a new reranker ships)."""
    import json

    from inference_server.paths import SHIPPED_RERANKER

    manifest_path = schemas.repo_root() / "models" / SHIPPED_RERANKER / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    procs = schemas.load_json("search-pipeline.json")["response_processors"]
    rerank = next(p["sesa_rerank"] for p in procs if "sesa_rerank" in p)
    assert rerank["rerank_weight"] == manifest["recommended_rerank_weight"]
    assert manifest["recommended_rerank_weight"] == manifest["metrics"]["ndcg@10"]["dev"]["alpha_chosen"]
    assert manifest["data"]["test_qrels_used_for_training"] is False and manifest["precision"] == "int8"


def test_the_shipped_reranker_files_match_their_manifest_and_stay_under_25_mb():
    import json

    from inference_server import paths

    d = paths.shipped_reranker_dir()
    assert d is not None, "models/sesa-reranker-minilm-l6-scifact is missing or incomplete"
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {p.name for p in d.iterdir() if p.is_file() and p.name != "manifest.json"}
    for name, meta in manifest["files"].items():
        assert (d / name).stat().st_size == meta["bytes"] < 25 * 1024 * 1024, name
        assert paths.sha256_file(d / name) == meta["sha256"], name


def test_every_shipped_concept_space_matches_its_manifest_and_loads():
    """Each trained concept space under models/: the files its manifest lists (sha256, size, each under 25 MB), and
    the server's own loader (which checks the matrix against matrix_sha256) reads it with the assignment it declares."""
    import json

    from inference_server import paths
    from inference_server.runtime.concept_head import ConceptHead

    spaces = sorted(d for d in (schemas.repo_root() / "models").iterdir() if (d / "matrix.npy").is_file())
    assert {d.name for d in spaces} >= {"esco-skills-sesa-scifact", "esco-skills-sesa-esco"}
    for d in spaces:
        manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        for name, meta in manifest["files"].items():
            assert (d / name).stat().st_size == meta["bytes"] < 25 * 1024 * 1024, (d.name, name)
            assert paths.sha256_file(d / name) == meta["sha256"], (d.name, name)
        head = ConceptHead.load(d)
        assert head.name == d.name and head.size == manifest["size"]
        assignment = manifest.get("assignment") or {}
        assert head.literal_boost == assignment.get("literal_boost", 0.0)
        assert (head.phrases is not None) == (head.literal_boost > 0)


def test_sesa_up_serves_the_shipped_esco_space_unless_told_otherwise(tmp_path):
    """`sesa up --concept-space`: auto (the default) is the shipped trained ESCO space of this checkout, a built-in
    pack or none passes through, a directory is expanded."""
    from inference_server import paths
    from integration.cli import concept_space_args

    shipped = paths.shipped_concept_space_dir()
    assert shipped is not None and shipped.name == "esco-skills-sesa-esco"
    assert concept_space_args("auto") == ("--concept-space", str(shipped))
    assert concept_space_args(None) == ("--concept-space", str(shipped))
    assert concept_space_args("esco-skills") == ("--concept-space", "esco-skills")
    assert concept_space_args("none") == ("--concept-space", "none")
    assert concept_space_args(str(tmp_path)) == ("--concept-space", str(tmp_path))
