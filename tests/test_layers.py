"""The package's one-way data flow: io -> data -> models -> train -> infer -> vectorize ->
api -> cli. A module never imports a higher layer, and only api and cli read configuration."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "geounet"
ORDER = ["io", "data", "models", "train", "infer", "vectorize", "api", "cli"]
TOP = {
    "evaluate": "vectorize",
    "evaluate_cases": "vectorize",
    "report": "vectorize",
    "demo": "api",
    "config": "api",
    "api": "api",
    "cluster": "api",  # Dask tasks, called by the api only
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "geounet" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in ORDER else TOP.get(parts[1])


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # type-only imports (if TYPE_CHECKING:) do not run
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
    return names


def test_no_module_imports_a_higher_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _layer(".".join(rel.parts))
        if own is None:
            continue
        for name in _imports(path):
            other = _layer(name)
            if other is None or (name == "geounet.config" and own in ("api", "cli")):
                continue
            if path.name == "demo.py" or own == "cli":
                continue  # the demo and the CLI sit on top of the api
            assert ORDER.index(other) <= ORDER.index(own), f"{rel} imports {name}"


def test_lower_layers_do_not_read_configuration() -> None:
    for layer in ("io", "data", "models", "train", "infer", "vectorize"):
        for path in (PACKAGE / layer).rglob("*.py"):
            text = path.read_text()
            # a type-only import (under TYPE_CHECKING) is allowed; loading is not
            assert "load_config" not in text, path
            for line in text.splitlines():
                if line.startswith(("from geounet.config", "import geounet.config")):
                    raise AssertionError(f"{path}: {line}")
