"""The package's import structure: layers point down only, no import cycle, light inference imports;
the package stands alone: it imports nothing of the checkout around it (benchmarks/, tools/, tests/)
and finds no file through it.

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
    "jsonio": 0, "config": 0, "progress": 0,
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


# ---------------------------------------------------------------------------- the package stands alone
CHECKOUT_PACKAGES = {"benchmarks", "tools", "tests"}  # folders beside lib/ in the checkout, not installed


def checkout_imports(source):
    """Top-level names of the checkout's folders that the module `source` imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found & CHECKOUT_PACKAGES


def test_the_package_imports_nothing_of_the_checkout():
    found = {str(path.relative_to(PACKAGE_ROOT)): sorted(checkout_imports(path.read_text()))
             for path in sorted(PACKAGE_ROOT.rglob("*.py")) if checkout_imports(path.read_text())}
    assert not found, found


def _refers_to_this_file(node):
    return (isinstance(node, ast.Name) and node.id == "__file__") or (
        isinstance(node, ast.Attribute) and node.attr == "__file__")


def _folders_up(node):
    """Folders a path expression climbs at `node`: dirname(), .parent, .parents[N], '..'."""
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return int(name == "dirname")
    if isinstance(node, ast.Attribute):
        return int(node.attr == "parent")
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents"
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)):
        return node.slice.value + 1
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("\\", "/").split("/").count("..")
    return 0


def climbs_out_of_the_package(source, depth):
    """Line numbers of expressions that start from `__file__` (of this module, or a package's) and climb
    more than `depth` folders: out of the package, for a module `depth` - 1 folders below its root."""
    lines = []
    for statement in ast.walk(ast.parse(source)):
        if not isinstance(statement, ast.stmt):
            continue
        for expression in ast.iter_child_nodes(statement):
            if not isinstance(expression, ast.expr):
                continue
            nodes = list(ast.walk(expression))
            if any(_refers_to_this_file(node) for node in nodes) and sum(map(_folders_up, nodes)) > depth:
                lines.append(expression.lineno)
    return lines


def test_no_file_is_found_through_the_checkout():
    """Package files are read from inside the package; everything else comes from arguments (an
    installed, non-editable package has no checkout around it)."""
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT)
        lines = climbs_out_of_the_package(path.read_text(), len(relative.parts))
        if lines:
            found[relative.as_posix()] = lines
    assert not found, found


def test_a_climb_or_a_checkout_import_would_be_found():
    """The checks are real: the ways of climbing from __file__ are counted, a path inside the package passes;
    imports of the checkout's folders are named."""
    assert climbs_out_of_the_package("ROOT = Path(kitpose.__file__).resolve().parents[2]\n", 2) == [1]
    assert climbs_out_of_the_package("from pathlib import Path\nX = Path(__file__).parent.parent.parent / 'e'\n",
                                     2) == [2]
    assert climbs_out_of_the_package("T = os.path.join(os.path.dirname(__file__), '..', '..', 'experiments')\n",
                                     2) == [1]
    assert climbs_out_of_the_package("T = os.path.join(os.path.dirname(__file__), '../../experiments/x.yaml')\n",
                                     2) == [1]
    assert climbs_out_of_the_package("META = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'meta')\n",
                                     2) == []
    assert climbs_out_of_the_package("ROOT = Path(__file__).parents[1]\n", 2) == []
    assert checkout_imports("from benchmarks.targets import TARGETS\nimport tools.train\nimport kitpose\n") == {
        "benchmarks", "tools"}
