"""Imports run one way: source → hub → listeners / packager, then control on top.

Every module under `relay/` and `hls/` is parsed (never imported) and each import in it,
wherever it sits (module level, inside a function, under `TYPE_CHECKING`, relative or
absolute), is checked against three rules:

- `relay/` and `hls/` import nothing from `control/` or `mediaserver/`;
- `relay/` imports nothing from `hls/`;
- `hls/` imports from `relay/` only the shared codec cores `relay.mp3`, `relay.adts`,
  `relay.codec` and `relay.icy`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ON_TOP = ("control", "mediaserver")
CODEC_CORES = ("relay.mp3", "relay.adts", "relay.codec", "relay.icy")

# The one place relay/ meets hls/: the relay manager is where a stream's pieces are put
# together (source → hub → MP3 listeners and the HLS packager), so it builds each relay's
# LiveHls and passes its ad markers on. Nothing else in relay/ may import hls.
KNOWN = {("relay/manager.py", "hls.live"), ("relay/manager.py", "hls.adbreaks")}


def imports_of(source: str, module: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything `source` (the module named `module`) imports.

    `from a.b import c` yields `a.b.c` (c may be a submodule or a name in a.b); relative
    imports are resolved against `module`'s package; `importlib.import_module("x")` and
    `__import__("x")` with a literal name count too.
    """
    package = module.split(".")[:-1]  # `relay.hub` and `relay.__init__` are both in relay
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package[: len(package) - (node.level - 1)]
                base = ".".join([*kept, base] if base else kept)
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            first = node.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            yield node.lineno, first.value


def _dynamic_import(call: ast.Call) -> bool:
    func = call.func
    named = (isinstance(func, ast.Name) and func.id == "__import__") or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    return (
        named
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def modules(package: str) -> list[tuple[str, str, str]]:
    """(path relative to the root, dotted module name, source) of every module in `package`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        dotted = relative.removesuffix(".py").replace("/", ".")
        found.append((relative, dotted, path.read_text(encoding="utf-8")))
    assert found, f"no modules found under {ROOT / package}"
    return found


def violations(package: str) -> list[str]:
    found = []
    for relative, dotted, source in modules(package):
        for line, name in imports_of(source, dotted):
            if any(_within(name, top) for top in ON_TOP):
                found.append(f"{relative}:{line} imports {name} (it sits above {package}/)")
            elif package == "relay" and _within(name, "hls"):
                if not any(relative == f and _within(name, m) for f, m in KNOWN):
                    found.append(f"{relative}:{line} imports {name} (relay/ must not import hls/)")
            elif package == "hls" and _within(name, "relay"):
                if not any(_within(name, core) for core in CODEC_CORES):
                    found.append(
                        f"{relative}:{line} imports {name} (hls/ may import only the codec "
                        "cores relay.mp3, relay.adts, relay.codec and relay.icy from relay/)"
                    )
    return found


def test_relay_imports_nothing_from_control_mediaserver_or_hls() -> None:
    found = violations("relay")
    assert not found, "wrong-way imports:\n" + "\n".join(found)


def test_hls_imports_nothing_from_control_or_mediaserver_and_only_codecs_from_relay() -> None:
    found = violations("hls")
    assert not found, "wrong-way imports:\n" + "\n".join(found)


def test_known_exceptions_are_still_needed() -> None:
    """An exception nobody needs any more is deleted, so the rule is whole again."""
    for relative, module in KNOWN:
        source = (ROOT / relative).read_text(encoding="utf-8")
        dotted = relative.removesuffix(".py").replace("/", ".")
        names = [name for _, name in imports_of(source, dotted)]
        assert any(_within(name, module) for name in names), (
            f"{relative} no longer imports {module}: delete it from KNOWN"
        )


def test_every_kind_of_import_is_seen() -> None:
    source = """
import mediaserver.config as config
from control import api
from ..control.streams import service
from . import hub


def later():
    from mediaserver.errors import NotFound
    import importlib
    return importlib.import_module("control.app"), __import__("hls.live")
"""
    seen = {name for _, name in imports_of(source, "relay.manager")}
    assert seen >= {
        "mediaserver.config",
        "control.api",
        "control.streams.service",
        "relay.hub",
        "mediaserver.errors.NotFound",
        "control.app",
        "hls.live",
    }
    lines = {line for line, name in imports_of(source, "relay.manager") if "NotFound" in name}
    assert lines == {9}
