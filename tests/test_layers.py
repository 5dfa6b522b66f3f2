"""The house's rules, read from the code's own imports (``ast``), so CI holds the layout.

Layers, from the ground up; a module may import only from its own layer or below:

0. ``core``, ``config``, ``worktime``, ``scheduling`` — the ground: extensions, the clock, the
   calendar, durable due work;
1. ``notifications`` — e-mail and SMS to addresses; it knows no domain;
2. ``accounts``, ``contacts`` — users and roles; the register and the monthly check;
3. ``crisis.oncall`` — who is responsible now and how to reach them;
4. ``crisis.incidents`` — disruptions;
5. ``crisis.visits`` — camera supervision and physical visits;
6. ``crisis`` itself (``crisis/__init__.py``, ``crisis/links.py``): what spans the three;
7. ``app`` — the composition root, imported by nobody.

One exception: ``accounts.access`` and ``accounts.roles`` (the decorators with which every
blueprint declares who may use it) may be imported from any layer. Upward needs are met by
registries the higher layer fills in its ``init_app`` (retention rules, audited models, demo
data, readiness checks, the register extract's parts, inbound SMS and address hooks).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"tests", "migrations", "bench", "node_modules", "tools"}
LAYERS = (
    ("core", "config", "worktime", "scheduling"),
    ("notifications",),
    ("accounts", "contacts"),
    ("crisis.oncall",),
    ("crisis.incidents",),
    ("crisis.visits",),
    ("crisis",),
    ("app",),
)
ANYWHERE = ("accounts.access", "accounts.roles")
MAX_LINES = 600


def _sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not (
            set(path.relative_to(ROOT).parts) & SKIPPED or any(p.startswith(".") for p in path.relative_to(ROOT).parts)
        )
    )


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), wherever in the file the import is."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def layer_of(name: str) -> int | None:
    """The layer of a module name (the most specific prefix wins); None for libraries."""
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def upward_imports(paths) -> list[str]:
    breaches = []
    for path in paths:
        own = layer_of(_module(path))
        if own is None:
            continue
        for name in sorted(_imports(path)):
            if any(name == allowed or name.startswith(allowed + ".") for allowed in ANYWHERE):
                continue
            other = layer_of(name)
            if other is not None and other > own:
                breaches.append(f"{path.relative_to(ROOT)} imports {name}")
    return breaches


def test_no_module_imports_a_higher_layer():
    assert upward_imports(_sources()) == []


def test_the_layer_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a notifications module importing the register is reported."""
    package = tmp_path / "notifications"
    package.mkdir()
    (package / "bad.py").write_text("from contacts.models import ContactPerson\nimport crisis.visits.models\n")
    (package / "fine.py").write_text("from accounts.access import public\nfrom core.clock import current_clock\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = upward_imports(sorted(package.glob("*.py")))
    assert found == [
        "notifications/bad.py imports contacts.models",
        "notifications/bad.py imports contacts.models.ContactPerson",
        "notifications/bad.py imports crisis.visits.models",
    ]


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("core.clock", 0),
        ("notifications.service", 1),
        ("contacts.models", 2),
        ("crisis.oncall.roster", 3),
        ("crisis.incidents.models", 4),
        ("crisis.visits.service", 5),
        ("crisis.links", 6),
        ("flask", None),
    ],
)
def test_layers_are_told_by_the_most_specific_package(name, layer):
    assert layer_of(name) == layer


def test_crisis_holds_its_three_domains_and_at_most_three_shared_modules():
    crisis = ROOT / "crisis"
    packages = sorted(p.name for p in crisis.iterdir() if (p / "__init__.py").exists())
    modules = sorted(p.name for p in crisis.glob("*.py") if p.name != "__init__.py")
    assert packages == ["incidents", "oncall", "visits"]
    assert len(modules) <= 3, modules


def test_no_source_file_is_longer_than_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_modules_are_registered_explicitly_not_loaded_by_name():
    by_name = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module",
                "find_spec",
                "__import__",
            ):
                by_name.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert by_name == []
