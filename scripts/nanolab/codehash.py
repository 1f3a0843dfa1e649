"""Which package code a rule's command runs, so a code change reruns exactly the jobs it affects.

Snakemake's code trigger sees only a rule's shell text. Each job's arguments file therefore carries
a hash of the source of the nanolab modules its command imports (see `jobargs`): the entry module named after
`python -m` (for the package itself, `__main__` and the subcommand's function in the module that
defines it) and everything those import within the package, found by parsing the imports.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import cache
from pathlib import Path

from .atomic import write_text_atomic

PACKAGE = "nanolab"
PACKAGE_DIR = Path(__file__).parent


@cache
def parse(module: str) -> ast.Module:
    return ast.parse(module_path(module).read_text(encoding="utf-8"))


def module_path(module: str) -> Path:
    """nanolab.stage -> <package>/stage.py; nanolab -> <package>/__init__.py."""
    parts = module.split(".")[1:]
    return PACKAGE_DIR.joinpath(*parts[:-1], f"{parts[-1]}.py") if parts else PACKAGE_DIR / "__init__.py"


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, relative imports resolved against `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if module_path(module).name == "__init__.py" else 0)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def is_package_module(name: str) -> bool:
    return (name == PACKAGE or name.startswith(PACKAGE + ".")) and module_path(name).is_file()


@cache
def bound_names(module: str) -> dict[str, str]:
    """Top-level names bound by imports to package modules: {'stage': 'nanolab.stage', 'read_parquet': 'nanolab.io'}."""
    names = {}
    for node in parse(module).body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_package_module(alias.name):
                    names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else PACKAGE
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, node)
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if is_package_module(target):
                    names[alias.asname or alias.name] = target
                elif is_package_module(source):
                    names[alias.asname or alias.name] = source
    return names


def statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement, nested ones included, without walking expressions (5x faster than ast.walk)."""
    found = []
    for node in body:
        found.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            found += statements(getattr(node, field, []) or [])
    return found


def node_imports(module: str, node: ast.AST) -> set[str]:
    """Package modules one import statement of `module` imports (none for any other node)."""
    found = set()
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
        source = absolute(module, node)
        for alias in node.names:
            target = f"{source}.{alias.name}"
            found.add(target if is_package_module(target) else source)
    return {name for name in found if is_package_module(name)}


@cache
def imported_modules(module: str) -> set[str]:
    """Package modules a module imports anywhere in its source."""
    return {name for node in statements(parse(module).body) for name in node_imports(module, node)}


def closure(modules: set[str]) -> set[str]:
    """The modules and everything they import within the package, transitively (plus the package's __init__)."""
    seen: set[str] = set()
    todo = [*modules, PACKAGE]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imported_modules(module) - seen
    return seen


def subcommand_function(module: str, command: str) -> str | None:
    """The function argparse runs for a subcommand: `add_parser("stage")` … `set_defaults(run=run_stage)`."""
    calls = sorted((n for n in ast.walk(parse(module)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)), key=lambda n: n.lineno)
    current = None
    for call in calls:
        if call.func.attr == "add_parser" and call.args and isinstance(call.args[0], ast.Constant):
            current = call.args[0].value
        elif call.func.attr == "set_defaults" and current == command:
            for keyword in call.keywords:
                if isinstance(keyword.value, ast.Name):
                    return keyword.value.id
    return None


def function_modules(module: str, function: str) -> set[str] | None:
    """Package modules a top-level function refers to or imports itself (a command imports what only it
    needs when it runs), following calls to the module's other functions."""
    functions = {n.name: n for n in parse(module).body if isinstance(n, ast.FunctionDef)}
    if function not in functions:
        return None
    names = bound_names(module)
    found, seen, todo = set(), set(), [function]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            found |= node_imports(module, node)
            if isinstance(node, ast.Name):
                if node.id in names:
                    found.add(names[node.id])
                elif node.id in functions:
                    todo.append(node.id)
    return found


@cache
def rule_closure(command: str) -> frozenset[str]:
    """Every package module whose source decides what `python -m <command>` does.

    For the package itself (`nanolab stage`): __init__, __main__, the module defining the
    subcommand's function (its own source) and the closure of what that function refers to; a module
    imported there but not used by the subcommand does not count. When the subcommand cannot be
    resolved, the whole import closure counts (safe: reruns too much, never too little)."""
    module, *arguments = command.split()
    if module_path(module).name != "__init__.py":
        return frozenset(closure({module}))
    main = f"{module}.__main__"
    if arguments:
        for source in sorted(imported_modules(main)):
            function = subcommand_function(source, arguments[0])
            used = function_modules(source, function) if function else None
            if used is not None:
                return frozenset({PACKAGE, main, source} | closure(used))
    return frozenset(closure({main}))


@cache
def code_version(command: str) -> str:
    """Short hash of the sources of the command's modules: it changes with that code only."""
    digest = hashlib.blake2b(digest_size=8)
    for module in sorted(rule_closure(command)):
        digest.update(module.encode() + b"\x00" + module_path(module).read_bytes() + b"\x00")
    return digest.hexdigest()


def code_versions(commands: list[str], cache_path: Path) -> dict[str, str]:
    """`code_version` of each command, kept in `cache_path` under a hash of the whole package's
    source: while the package is unchanged nothing is parsed (parsing costs ~0.15 s a run)."""
    package = hashlib.blake2b(json.dumps(module_hashes(), sort_keys=True).encode(), digest_size=8).hexdigest()
    try:
        document = json.loads(cache_path.read_text(encoding="utf-8"))
        if document["package"] == package and set(commands) <= set(document["versions"]):
            return {command: document["versions"][command] for command in commands}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    versions = {command: code_version(command) for command in commands}
    write_text_atomic(cache_path, json.dumps({"package": package, "versions": versions}), private=True)
    return versions


def clear_caches() -> None:
    """After the package's files changed within one process (tests)."""
    for function in (parse, is_package_module, bound_names, imported_modules, rule_closure, code_version):
        function.cache_clear()


def module_hashes() -> dict[str, str]:
    """Every package module's source hash: which modules changed since results/ was last built."""
    return {
        f"{PACKAGE}.{path.stem}" if path.stem != "__init__" else PACKAGE: hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()
        for path in sorted(PACKAGE_DIR.glob("*.py"))
    }
