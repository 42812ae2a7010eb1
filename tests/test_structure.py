"""The package's shape: the kernel sets share one interface, no import cycle, no long file."""
import ast
import importlib.util
import inspect
from pathlib import Path

import pytest

from nnumba import kernels
from nnumba.kernels import cpu

PACKAGE = Path(kernels.__file__).resolve().parent.parent


def _signature(fn):
    return inspect.signature(getattr(fn, "py_func", fn))


def test_the_cpu_set_exports_the_interface():
    assert sorted(cpu.__all__) == sorted(kernels.KERNELS)


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason='numba-cuda is not installed (pip install "nnumba[cuda]")')
def test_the_cuda_set_has_the_cpu_sets_names_and_signatures():
    from nnumba.kernels import cuda
    assert sorted(cuda.__all__) == sorted(kernels.KERNELS)
    differ = {name: (str(_signature(getattr(cpu, name))), str(_signature(getattr(cuda, name))))
              for name in kernels.KERNELS
              if _signature(getattr(cpu, name)) != _signature(getattr(cuda, name))}
    assert not differ, differ


def _imports(path: Path, module: str) -> set[str]:
    """The nnumba modules ``module`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text())
    found = set()
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nnumba")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("nnumba"):
                found.add(name)
                found |= {f"{name}.{a.name}" for a in node.names}
    return found


def test_the_package_has_no_import_cycle():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name}
             for name, path in modules.items()}
    # A package's __init__ importing its own submodules is how Python packages work;
    # a submodule importing its package's __init__ back is the cycle that matters.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_module_is_over_450_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long
