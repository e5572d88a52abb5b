"""The import structure of docs/architecture.md, read from the source: layers, no cycles.

Every import counts, at module level or inside a function (a function-level import must not hide
a cycle); imports under ``if TYPE_CHECKING:`` are for type checkers only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# cec: each module's layer; a module imports only modules of a lower layer (docs/architecture.md)
CEC_LAYERS: dict[str, int] = {
    # 0 leaves: no other cec module
    "cec._version": 0, "cec._files": 0, "cec._warnings": 0, "cec._numerics": 0, "cec._checks": 0,
    "cec._missing": 0, "cec._typer_help": 0, "cec.signature": 0, "cec._streams": 0,
    "cec.io.records": 0, "cec.segment_rules": 0, "cec.causal_lexicon": 0,
    "cec.devices": 0, "cec.models": 0, "cec.layout": 0, "cec.readable": 0,
    # 1 stages built on leaves
    "cec.cache": 1, "cec.io.items": 1, "cec.segment": 1, "cec.similarity": 1, "cec._onnx": 1,
    "cec.result": 1, "cec.hf_model": 1, "cec.encoder_base": 1,
    # 2 the fast-start copy of a model (ONNX Runtime, no torch import), the precision runners;
    # input checks and causal links, both on top of segment; the cec.io facade over its parts
    "cec._fast": 2, "cec.runners": 2, "cec.inputs": 2, "cec.causal": 2, "cec.io": 2,
    # 3 encoding and the analyses the scorer runs
    "cec.encode": 3, "cec.align": 3, "cec.directional": 3, "cec.rescale": 3,
    # 4 the pipeline
    "cec.scorer": 4,
    # 5 adapters over a scorer
    "cec.metric": 5, "cec.ray": 5, "cec.links_view": 5, "cec.integrations._common": 5,
    # 6 harness integrations
    "cec.integrations": 6, "cec.integrations.lm_eval": 6, "cec.integrations.hf_evaluate": 6,
    "cec.integrations.torchmetrics": 6, "cec.integrations.inspect": 6,
    # 7-10 the command line (cec/cli/): 7 the app and what the commands share, 8 one module per
    # command, 9 the entry point `main`, 10 `python -m cec.cli`
    "cec.cli._app": 7, "cec.cli.options": 7, "cec.cli.summary": 7, "cec.cli.resume": 7,
    "cec.cli.outputs": 7,
    "cec.cli.score": 8, "cec.cli.explain": 8, "cec.cli.baseline": 8,
    "cec.cli": 9, "cec.cli.__main__": 10,
    # 11 the package itself (lazy names only)
    "cec": 11,
}  # fmt: skip


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in ("cec", "cec_distill"):
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = path
    return mods


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


MODULES = _modules()
GRAPH = {m: _imports(p, set(MODULES)) - {m} for m, p in MODULES.items()}


def test_every_cec_module_has_a_layer():
    missing = sorted(m for m in MODULES if m.split(".")[0] == "cec" and m not in CEC_LAYERS)
    assert not missing, f"add these modules to CEC_LAYERS and docs/architecture.md: {missing}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m in CEC_LAYERS))
def test_cec_imports_point_down_the_layers(module):
    up = sorted(
        t for t in GRAPH[module]
        if t in CEC_LAYERS and CEC_LAYERS[t] >= CEC_LAYERS[module] and not module.startswith(t)
    )  # fmt: skip
    assert not up, f"{module} (layer {CEC_LAYERS[module]}) imports {up}"


def test_cec_never_imports_cec_distill():
    offenders = {m: sorted(t for t in GRAPH[m] if t.startswith("cec_distill")) for m in GRAPH}
    assert not {m: t for m, t in offenders.items() if m.startswith("cec.") and t}


def test_no_import_cycles_anywhere():
    """Tarjan's strongly connected components over cec and cec_distill together."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if v.startswith(w + "."):  # a module importing its own package's names
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_submodule_imports_a_package_that_imports_it():
    """A package's ``__init__`` that re-exports its submodules' names is a facade: a submodule
    importing it back is a cycle the Tarjan check above skips (it allows ``v -> v's package``)."""

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for w in GRAPH[todo.pop()]:
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    hidden = sorted(
        (m, p) for m in GRAPH for p in GRAPH[m] if m.startswith(p + ".") and m in reachable(p)
    )
    assert not hidden, f"submodules importing a package that imports them: {hidden}"
