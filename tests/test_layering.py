"""The package's import structure: layers point down only, no import cycle, light inference imports.

Every `import` of a kitpose module anywhere in a file counts (also inside functions): a deferred
import hides a dependency from Python, not from the design. docs/architecture.md describes the
layers.
"""
import ast
import subprocess
import sys
from pathlib import Path

import kitpose

PACKAGE_ROOT = Path(kitpose.__file__).resolve().parent

# top-level unit -> layer; a unit may import units of lower layers (and itself) only
LAYERS = {
    "jsonio": 0, "config": 0,
    "codecs": 1,
    "models": 2, "datasets": 2,
    "losses": 3, "evaluation": 3, "runtime": 3, "vis": 3, "demo": 3, "interop": 3,
    "console": 4,
    "inference": 5, "engine": 5,
}


def module_name(path):
    relative = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path):
    """Absolute names of the kitpose modules `path` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kitpose")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("kitpose"):
                found.add(target)
    return found


def unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph():
    graph = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        graph[module_name(path)] = imported_modules(path)
    return graph


def test_every_unit_has_a_layer():
    units = {unit(module) for module in import_graph()} - {""}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS (and docs/architecture.md)"


def test_imports_point_down_only():
    upward = []
    for module, imports in import_graph().items():
        source = unit(module)
        if not source:
            continue
        for target in imports:
            destination = unit(target)
            if destination and destination != source and LAYERS[destination] >= LAYERS[source]:
                upward.append(f"{module} imports {target} ({source} layer {LAYERS[source]} -> "
                              f"{destination} layer {LAYERS[destination]})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = import_graph()

    def resolve(target):
        """A module, or the package whose __init__ it is; `from pkg import name` resolves to pkg."""
        return target if target in graph else target.rsplit(".", 1)[0]

    edges = {module: {resolve(target) for target in imports if resolve(target) in graph}
             for module, imports in graph.items()}
    # a package's __init__ re-exports its modules: edges package -> its own modules are not cycles
    # unless a module imports back a sibling through the package, which the walk below finds
    state, stack, cycles = {}, [], []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges[module]):
            if target.startswith(module + "."):
                continue  # __init__ importing its own submodule
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(cycles)


def test_a_cycle_would_be_found(tmp_path, monkeypatch):
    """The walk is real: a module importing its importer is reported."""
    package = tmp_path / "kitpose"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "__init__.py").write_text("from .a import x\n")
    (package / "models" / "a.py").write_text("from .b import y\nx = 1\n")
    (package / "models" / "b.py").write_text("from kitpose.models.a import x\ny = 2\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_ROOT", package)
    try:
        test_no_import_cycle()
    except AssertionError as err:
        assert "kitpose.models.a -> kitpose.models.b -> kitpose.models.a" in str(err)
    else:
        raise AssertionError("the cycle a -> b -> a was not reported")


def test_importing_inference_does_not_load_training():
    code = ("import sys, kitpose.inference; "
            "print(sorted(m for m in sys.modules if m.startswith(('tensorboardX', 'kitpose.engine', "
            "'kitpose.losses'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
