"""No import cycles inside the package, counting imports inside functions (they hide cycles) and
the package ``__init__`` every import of a submodule runs first: every module can be imported
first, on its own."""

import ast
from pathlib import Path

import osrl_unlearn

PACKAGE = Path(osrl_unlearn.__file__).parent


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # importing a.b.c runs a.b's __init__ first (the root's runs before anything)
                while target and target != PACKAGE.name:
                    if target in modules and target != name and not name.startswith(target + "."):
                        graph[name].add(target)
                    target = target.rpartition(".")[0]
    return graph


def test_the_package_has_no_import_cycles():
    graph = module_graph()
    assert len(graph) > 40  # the walk found the package
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
