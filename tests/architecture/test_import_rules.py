"""The layout's rules, checked on the source: no module imports another module's private names, imports form no
cycle (those inside functions included), and the serving package reaches model building only lazily, through
the three cache-miss hooks below, never at import time. Generated gRPC stubs are left out."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inference_server", "model_building", "ir", "integration")
GENERATED = {"inference_server.contract.inference_pb2", "inference_server.contract.inference_pb2_grpc"}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(parts)
            if name not in GENERATED:
                out[name] = p
    return out


MODULES = _modules()

# The server builds what its cache lacks when the config allows it (models.auto_export, build_missing_concepts):
# these lazy imports are the only edges from serving into model building, and the only ones the cycle check
# leaves out.
CACHE_MISS_HOOKS = {
    ("inference_server.model_store", "model_building.export"),
    ("inference_server.model_store", "model_building.quantize"),
    ("inference_server.runtime.concept_space", "model_building.concept_packs.build"),
}


def _imports(name: str, path: Path, top_level_only: bool) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of the project's own imports in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] in PACKAGES:
                out.append((mod, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] in PACKAGES]
    return out


def _resolve(mod: str, names: list[str]) -> list[str]:
    """The project modules an import statement loads: `from pkg import sub` loads pkg.sub."""
    found = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
    return found + ([mod] if mod in MODULES and len(found) < max(1, len(names)) else [])


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for name, path in MODULES.items():
        for mod, names, line in _imports(name, path, top_level_only=False):
            for n in names:
                if n.startswith("_") and not n.startswith("__") and f"{mod}.{n}" not in MODULES:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}.{n}")
    assert not offenders, "private names used across modules:\n" + "\n".join(offenders)


def test_imports_have_no_cycle():
    graph = {name: sorted({t for mod, names, _ in _imports(name, path, top_level_only=False)
                           for t in _resolve(mod, names) if t != name and (name, t) not in CACHE_MISS_HOOKS})
             for name, path in MODULES.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            # a package's __init__ importing its own submodules is how packages re-export; not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_serving_package_reaches_model_building_only_through_the_cache_miss_hooks():
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("inference_server"):
            continue
        for mod, names, line in _imports(name, path, top_level_only=False):
            if mod.split(".")[0] == "integration":
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
            elif mod.split(".")[0] == "model_building" and (name, mod) not in CACHE_MISS_HOOKS and not (
                    name == "inference_server.cli" and mod == "model_building.cli"):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
        top = [mod for mod, _, _ in _imports(name, path, top_level_only=True)]
        offenders += [f"{path.relative_to(ROOT)} imports {mod} at import time" for mod in top
                      if mod.split(".")[0] == "model_building"]
    assert not offenders, "\n".join(offenders)


def test_the_rules_see_the_tree():
    # guards the three tests above against passing on an empty module list
    assert {"inference_server.server", "model_building.export", "ir.fusion", "integration.cli"} <= set(MODULES)


def test_the_product_does_not_import_research():
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} imports {m}" for m in mods
                          if m.split(".")[0] == "research"]
    assert not offenders, "\n".join(offenders)
