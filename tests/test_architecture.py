"""The package's layers: no import circle anywhere, and no arrow from a lower layer to a higher one.

Every `import` statement counts, including those inside functions (they hide a circle, they do not
remove it). Layers (README, "Architecture"): kernels and factory at the bottom, losses on them,
training on losses; nets, data, metrics beside; the CLIs on top.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lightning_gans"

# subpackage -> the subpackages it may import (besides itself)
ALLOWED = {
    "kernels": set(),
    "factory": set(),
    "losses": {"kernels", "factory"},
    "nets": set(),
    "data": set(),
    "metrics": {"data", "nets"},
    "training": {"losses", "kernels"},
    "cli": {"kernels", "factory", "losses", "nets", "data", "metrics", "training"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py") if "conf" not in p.relative_to(PKG).parts}


def resolve(current: str, is_pkg: bool, node: ast.AST) -> set[str]:
    """The package modules an import statement loads."""
    out = set()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = current if is_pkg else current.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        mod = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
        # `from pkg import sub` loads pkg.sub (pkg's __init__ runs first, as for every submodule import:
        # that implicit parent import is not an arrow); `from pkg import name` loads pkg itself.
        names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod for a in node.names]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name.startswith("lightning_gans"):
            out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    g = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= resolve(name, path.name == "__init__.py", node)
        # importing a.b.c runs a/__init__ and a/b/__init__ first: the parents are edges too
        g[name] = {e for e in edges if e != name}
    return g


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(g):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def layer_violations(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, edges in g.items():
        src = layer(name)
        if src is None:  # the package root and its deprecated aliases sit on top
            continue
        for e in edges:
            dst = layer(e)
            if e == "lightning_gans" or (dst is not None and dst != src and dst not in ALLOWED[src]):
                bad.append(f"{name} -> {e}")
    return sorted(bad)


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_arrows_point_down_the_layers():
    bad = layer_violations(graph())
    assert not bad, "imports against the layers: " + ", ".join(bad)


def test_the_checks_catch_a_planted_cycle_and_an_upward_arrow():
    g = graph()
    g["lightning_gans.factory.design"] = g["lightning_gans.factory.design"] | {"lightning_gans.losses.designed"}
    assert "lightning_gans.factory.design -> lightning_gans.losses.designed" in layer_violations(g)
    assert find_cycle(g) is not None  # losses.designed imports the factory: the circle of old
    assert find_cycle(graph()) is None and "lightning_gans.losses" in graph()["lightning_gans.training.module"]
