"""The import rules of DESIGN.md section 6, and the public surface."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelkeep
from modelkeep.client.backend import Backend
from modelkeep.client.http import HttpBackend
from modelkeep.client.local import LocalBackend

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


def service_imports(path: Path) -> set[str]:
    """The service modules ``path`` imports at module level, by module name."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module == "modelkeep.services":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "modelkeep.services."
        ):
            found.add((node.module or "").split(".")[2])
    return found


def test_services_import_each_other_without_cycles() -> None:
    """Use cases are layered (context, lookup, policies below models, versions, aliases,
    below governance): a cycle would make two contexts one."""
    graph = {p.stem: service_imports(p) - {p.stem} for p in modules("services")}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for child in sorted(graph.get(name, ())):
            visit(child, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


@pytest.mark.parametrize("path", modules("services"), ids=lambda p: p.name)
def test_no_service_reaches_into_another_or_hides_an_import(path: Path) -> None:
    tree = ast.parse(path.read_text())
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modelkeep")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    private += [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {p.stem for p in modules("services")}
        and node.attr.startswith("_")
    ]
    assert not private, f"{path.name} uses private names of other modules: {private}"
    assert "TYPE_CHECKING" not in path.read_text(), f"{path.name} hides an import"


def ports_protocols() -> dict[str, int]:
    found = {}
    for path in modules("ports"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                "Protocol" in ast.unparse(b) for b in node.bases
            ):
                methods = [
                    n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
                found[f"{path.stem}.{node.name}"] = len(methods)
    return found


def test_every_port_is_small() -> None:
    sizes = ports_protocols()
    assert {"unit_of_work.Transaction", "registry.Versions", "blobs.BlobStore"} <= set(sizes)
    assert not {name: n for name, n in sizes.items() if n > 20}


def test_audit_events_are_written_only_from_the_catalogue() -> None:
    """Every ``record_event`` names an ``EventKind``, and only the context writes events."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "record_event":
                    kind = ast.unparse(node.args[1])
                    assert kind.startswith(("EventKind.", "action")), f"{path.name}: {kind}"
                if node.func.attr == "append" and ast.unparse(node.func.value).endswith("tx.audit"):
                    assert path.name == "context.py", f"{path.name} writes audit rows itself"


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


HEAVY = ("sqlalchemy", "alembic", "boto3", "botocore", "fastapi", "starlette", "uvicorn", "pyarrow")
"""What ``import modelkeep`` never loads: the store, the server, the profiler."""

IN_PROCESS_TRANSPORT = {"client/local.py"}
"""The one client module that calls the services (and opens the store) in this process."""


def loaded_after(code: str, tmp_path: Path) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")]),
        "MODELKEEP_CACHE_DIR": str(tmp_path / "cache"),
    }
    report = "import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_import_modelkeep_loads_no_store_server_or_http(tmp_path: Path) -> None:
    loaded = loaded_after("import modelkeep", tmp_path)
    assert "modelkeep" in loaded
    # httpx too: it is loaded by the first connect() to a server, not by the import
    assert not loaded & {*HEAVY, "httpx"}, loaded & {*HEAVY, "httpx"}


def test_a_client_over_http_loads_no_store(tmp_path: Path) -> None:
    code = "import modelkeep\nmodelkeep.connect('http://127.0.0.1:9').close()"
    loaded = loaded_after(code, tmp_path)
    assert "httpx" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize(
    "path",
    [p for p in modules("client") if p.relative_to(SRC).as_posix() not in IN_PROCESS_TRANSPORT],
    ids=lambda p: p.name,
)
def test_client_imports_no_services_storage_or_bootstrap(path: Path) -> None:
    """Result types come from the domain; only the in-process transport reaches the
    services (every import counts, also one inside a function or TYPE_CHECKING)."""
    layers = ("modelkeep.services", "modelkeep.storage", "modelkeep.bootstrap")
    bad = {m for m in imports_of(path) if m.startswith((*layers, "modelkeep.entrypoints"))}
    assert not bad, f"{path.name} imports {bad}"


def backend_verbs() -> list[str]:
    """Every public method ``Backend`` declares, with those of the protocols it extends."""
    protocols = [c for c in Backend.__mro__ if getattr(c, "_is_protocol", False)]
    return sorted(
        {name for c in protocols for name, v in vars(c).items() if callable(v)}
        - {name for name in dir(object)}
        - {name for c in protocols for name in vars(c) if name.startswith("_")}
    )


@pytest.mark.parametrize("transport", [LocalBackend, HttpBackend], ids=lambda c: c.__name__)
def test_both_transports_implement_every_verb_alike(transport: type) -> None:
    """One interface: each verb of ``Backend`` exists on both transports and takes the
    same parameters, in the same order, so a verb cannot drift between them."""
    drift = {}
    for verb in backend_verbs():
        declared = list(inspect.signature(getattr(Backend, verb)).parameters)
        implemented = getattr(transport, verb, None)
        found = list(inspect.signature(implemented).parameters) if implemented else None
        if found != declared:
            drift[verb] = (declared, found)
    assert len(backend_verbs()) > 60
    assert not drift, f"{transport.__name__} differs from Backend: {drift}"
