"""The import graph of the two packages (docs/design.md): no cycles, `emodna/` free of Ray and
of `sweep/` (`emodna summarize` reaches the sweep through an entry point, not an import). Read
from the source with `ast`, so imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("emodna", "sweep")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, by its dotted name (``from a import b`` counts ``a`` and,
    where it is a module of ours, ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def graph() -> dict[str, set[str]]:
    ours = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in ours and m != name}
        for name, path in ours.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a path a -> b -> ... -> a, by depth-first search; None if there is none.
    A package's ``__init__`` is not an edge to its modules, so ``sweep -> sweep.x`` is skipped."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if node.startswith(nxt + "."):  # a module importing its own package's __init__
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_in_emodna_or_sweep():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()))


def test_emodna_imports_neither_ray_nor_sweep():
    for path in (ROOT / "emodna").rglob("*.py"):
        imported = imports_of(path)
        assert not any(m == "ray" or m.startswith("ray.") for m in imported), f"{path} imports Ray"
        into_sweep = {m for m in imported if m == "sweep" or m.startswith("sweep.")}
        assert not into_sweep, f"{path} imports {sorted(into_sweep)}"


def test_emodna_finds_summarize_through_its_entry_point_group():
    from importlib.metadata import entry_points

    import pytest

    from emodna.cli import COMMANDS_GROUP, build_parser

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared[COMMANDS_GROUP] == {"summarize": "sweep.command:add_summarize"}
    installed = {e.name: e.value for e in entry_points(group=COMMANDS_GROUP)}
    assert installed == declared[COMMANDS_GROUP], (
        "the installed metadata is older than pyproject.toml: pip install --no-deps -e . "
        "(and remove a stale emodna_sweep.egg-info from the checkout's root, which shadows it)"
    )
    args = build_parser().parse_args(["summarize", "runs/x", "--top", "5"])
    assert (args.func.__module__, args.top) == ("sweep.command", 5)


def test_no_module_of_emodna_or_sweep_is_over_450_lines():
    """One job per module (issue 14): a module past 450 lines is doing two; split it by job."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert sizes["emodna/train.py"] > 100  # the walk found the real files
    assert {name: n for name, n in sizes.items() if n > 450} == {}
