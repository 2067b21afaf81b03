"""Code shape figures, as JSON: lines per module and per function by package, and the
largest protocols and classes (the figures issue 11 asked for). Not a benchmark of speed:
a measure of how the code is cut.

    python3 bench/code_shape.py [ROOT]      # ROOT: a checkout (default: this one)
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

WATCHED = ("Client", "HttpBackend", "LocalBackend", "SqlTransaction", "ServiceContext")


def percentile(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[int]) -> dict[str, int]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "max": max(values),
    }


def methods(node: ast.ClassDef, public: bool) -> int:
    defs = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return sum(1 for d in defs if not (public and d.name.startswith("_")))


def measure(root: Path) -> dict[str, object]:
    modules: dict[str, list[int]] = {}
    functions: dict[str, list[int]] = {}
    classes: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        package = parts[0] if len(parts) > 1 else "(top)"
        text = path.read_text(encoding="utf-8")
        modules.setdefault(package, []).append(len(text.splitlines()))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.setdefault(package, []).append(length)
            elif isinstance(node, ast.ClassDef):
                name = f"{path.relative_to(root)}:{node.name}"
                if any("Protocol" in ast.unparse(b) for b in node.bases):
                    classes[f"protocol {name}"] = methods(node, public=False)
                elif node.name in WATCHED:
                    classes[f"public methods {name}"] = methods(node, public=True)
    every_module = [n for lines in modules.values() for n in lines]
    every_function = [n for lines in functions.values() for n in lines]
    return {
        "modules": summary(every_module),
        "functions": summary(every_function),
        "modules_by_package": {k: summary(v) for k, v in sorted(modules.items())},
        "functions_by_package": {k: summary(v) for k, v in sorted(functions.items())},
        "largest_classes": dict(sorted(classes.items(), key=lambda kv: -kv[1])[:15]),
    }


if __name__ == "__main__":
    checkout = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent
    print(json.dumps(measure(checkout / "src" / "modelkeep"), indent=1))
