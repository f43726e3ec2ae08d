"""The shape of the code under src/diffrl: short functions, typed public interfaces.

Both checks read the source with `ast` (nothing is imported) and name every function that fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "diffrl"
MAX_LINES = 40
MIN_ANNOTATED_SHARE = 0.95

Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions() -> list[tuple[str, Function]]:
    """Every function and method (nested ones included) as (`path:line name`, node)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                where = f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}"
                found.append((where, node))
    return found


def n_lines(node: Function) -> int:
    return node.end_lineno - node.lineno + 1


def fully_annotated(node: Function) -> bool:
    """A return annotation and an annotation on every argument except self and cls."""
    a = node.args
    args = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    args += [x for x in (a.vararg, a.kwarg) if x is not None]
    typed = all(x.annotation is not None for x in args if x.arg not in ("self", "cls"))
    return typed and node.returns is not None


def test_the_source_is_found():
    assert len(functions()) > 100


def test_no_function_is_longer_than_the_limit():
    long = [
        f"{where} ({n_lines(node)} lines)"
        for where, node in functions()
        if n_lines(node) > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines:\n" + "\n".join(long)


def test_public_functions_are_annotated():
    public = [(where, node) for where, node in functions() if not node.name.startswith("_")]
    missing = [where for where, node in public if not fully_annotated(node)]
    share = 1 - len(missing) / len(public)
    print(f"{len(public) - len(missing)} of {len(public)} public functions annotated ({share:.1%})")
    assert share >= MIN_ANNOTATED_SHARE, (
        f"{share:.1%} of {len(public)} public functions are fully annotated "
        f"(at least {MIN_ANNOTATED_SHARE:.0%} wanted); not annotated:\n" + "\n".join(missing)
    )
