"""The import rules of DESIGN.md section 6, and the public surface."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import modelkeep

SRC = Path(modelkeep.__file__).parent
IO_LIBRARIES = {
    "sqlalchemy",
    "alembic",
    "click",
    "rich",
    "psycopg",
    "httpx",
    "boto3",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "subprocess",
    "socket",
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_imports_no_io(path: Path) -> None:
    bad = {m for m in imports_of(path) if m.split(".")[0] in IO_LIBRARIES}
    bad |= {
        m
        for m in imports_of(path)
        if m.startswith("modelkeep.") and not m.startswith(("modelkeep.domain", "modelkeep.errors"))
    }
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", modules("services"), ids=lambda p: p.name)
def test_services_never_import_storage_or_entrypoints(path: Path) -> None:
    bad = {
        m
        for m in imports_of(path)
        if m.startswith(("modelkeep.storage", "modelkeep.entrypoints", "sqlalchemy"))
    }
    assert not bad, f"{path.name} imports {bad}"


def test_only_bootstrap_picks_adapters() -> None:
    users = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "storage" not in p.relative_to(SRC).parts
        and any(m.startswith("modelkeep.storage") for m in imports_of(p))
    }
    assert users == {"bootstrap.py"}


def test_bootstrap_imports_no_entrypoint() -> None:
    """The composition root builds what the entrypoints serve; it never depends on them."""
    bad = {m for m in imports_of(SRC / "bootstrap.py") if m.startswith("modelkeep.entrypoints")}
    assert not bad, f"bootstrap.py imports {bad}"


ROOT_MODULES = {"__init__", "__main__", "bootstrap", "config", "errors", "ports", "version"}
"""The only modules directly under src/modelkeep/; everything else lives in a package."""


def test_no_loose_top_level_modules() -> None:
    loose = {p.name for p in SRC.glob("*.py") if p.stem not in ROOT_MODULES}
    assert not loose, f"move {sorted(loose)} into a package"


SHARED = ("content", "stats", "attest", "render")
"""Packages every layer may use: they import only the domain, errors and each other."""


@pytest.mark.parametrize(
    "path", [p for s in SHARED for p in modules(s)], ids=lambda p: p.relative_to(SRC).as_posix()
)
def test_shared_packages_import_no_layer_above_the_domain(path: Path) -> None:
    allowed = ("modelkeep.domain", "modelkeep.errors", *(f"modelkeep.{s}" for s in SHARED))
    bad = {
        m
        for m in imports_of(path)
        if m.startswith("modelkeep") and not m.startswith(allowed) and m != "modelkeep"
    }
    bad |= {m for m in imports_of(path) if m.split(".")[0] in {"sqlalchemy", "fastapi", "click"}}
    assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def test_no_module_imports_names_from_the_package_root() -> None:
    """``from modelkeep import X`` only for a submodule: the root (the SDK's surface)
    imports the layers, so a layer importing it back would be a cycle."""
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "modelkeep" and node.level == 0:
                found |= {
                    f"{path.relative_to(SRC)}: {alias.name}"
                    for alias in node.names
                    if not (SRC / f"{alias.name}.py").exists() and not (SRC / alias.name).is_dir()
                }
    assert not found, found


def test_only_config_reads_the_environment() -> None:
    readers = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "os.environ" in p.read_text() or "getenv" in p.read_text()
    }
    allowed = {
        "client/client.py",
        "entrypoints/cli/context.py",
        "entrypoints/api/factory.py",
        "entrypoints/cli/server.py",
        "checks/command.py",  # hands the environment on to a user's check command
    }
    assert readers <= allowed, readers


def test_public_surface_is_sorted_and_complete() -> None:
    assert modelkeep.__all__ == sorted(modelkeep.__all__)
    for name in modelkeep.__all__:
        assert hasattr(modelkeep, name)
