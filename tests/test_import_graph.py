"""The import graph reads top-down (docs/design.md, "Three layers"): no module cycles, no
import of a higher layer, and the worker packages (trainer, rollouts, rewards) do not import
one another; what they share lives below them (sail_rl/model, sail_rl/errors)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sail_rl", "rollouts", "rewards", "eval")
# low to high; a module imports its own unit and lower layers only
LAYERS = [
    ("sail_rl.errors", "sail_rl.config", "sail_rl.schedule", "sail_rl.rundir"),
    ("sail_rl.algorithms", "sail_rl.model", "sail_rl.data"),
    ("sail_rl.trainer", "rollouts", "rewards", "sail_rl.sft", "eval"),
    ("sail_rl.rl", "sail_rl.commands", "sail_rl.cli", "sail_rl.pipeline", "sail_rl.demo", "sail_rl.bench", "sail_rl"),
]
WORKERS = {"sail_rl.trainer", "rollouts", "rewards"}
# open, owned elsewhere (issue #13): remove an entry when it is fixed
KNOWN: set[tuple[str, str]] = set()  # (importer, imported) edges allowed for now: none


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (at the top or inside a function)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        found = {resolve(t) for t in targets} - {None, name}
        graph[name] = {m for m in found if not name.startswith(m + ".")}  # a package's own __init__
    return graph


def _unit(module: str) -> tuple[int, str]:
    return max(((i, u) for i, layer in enumerate(LAYERS) for u in layer if module == u or module.startswith(u + ".")),
               key=lambda x: len(x[1]))


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in graph.items():
        (la, ua) = _unit(a)
        for b in targets:
            (lb, ub) = _unit(b)
            if (a, b) not in KNOWN and ua != ub and (lb > la or (ua in WORKERS and ub in WORKERS)):
                bad.append(f"{a} -> {b}")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Module cycles (strongly connected components of more than one module), KNOWN edges left out."""
    graph = {a: {b for b in bs if (a, b) not in KNOWN} for a, bs in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while comp[-1:] != [v]:
                comp.append(stack.pop())
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_cycles():
    assert cycles(import_graph()) == []


def test_no_import_of_a_higher_layer_or_between_workers():
    assert layer_violations(import_graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    graph = import_graph()
    graph["rewards.registry"] = graph["rewards.registry"] | {"rewards.builtin"}
    graph["rewards.builtin"] = graph["rewards.builtin"] | {"rewards.registry"}
    graph["sail_rl.trainer.policy_trainer"] = graph["sail_rl.trainer.policy_trainer"] | {"rollouts.engine", "sail_rl.rl.loop"}
    assert ["rewards.builtin", "rewards.registry"] in cycles(graph)
    assert {"sail_rl.trainer.policy_trainer -> rollouts.engine", "sail_rl.trainer.policy_trainer -> sail_rl.rl.loop"} <= set(layer_violations(graph))
