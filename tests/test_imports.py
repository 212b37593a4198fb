"""nnhp's import graph: no cycle anywhere, and the reference code (layers, losses,
optimizers) imports nothing of the fused path, directly or through another module.

The graph is read from the source with ``ast`` (every import statement, also those
inside functions), not from ``sys.modules``, so an import that only runs on some code
path counts too."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "nnhp"
REFERENCE = ("nnhp.layers", "nnhp.losses", "nnhp.optim")


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """{module: set of nnhp modules it imports}."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:       # "from pkg import module" names the module
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def reachable(graph: dict, start: str) -> set:
    seen, stack = set(), [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def test_the_graph_is_read_from_every_module():
    graph = import_graph()
    assert {"nnhp.model", "nnhp.fused.policy", "nnhp.fused.cpu", "nnhp.search.study"} <= set(graph)
    assert "nnhp.fused.steps" in graph["nnhp.fused"]                  # from .steps import ...
    assert "nnhp.fused.numba_kernels" in graph["nnhp.fused.cpu"]      # from . import numba_kernels
    assert "nnhp.fused" in graph["nnhp.model"]                        # from . import fused


def test_nnhp_has_no_import_cycle():
    graph = import_graph()
    cycles = sorted(name for name in graph if name in reachable(graph, name))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_layers_losses_and_optimizers_import_nothing_of_the_fused_path():
    graph = import_graph()
    for name in REFERENCE:
        fused = sorted(target for target in reachable(graph, name) | graph[name]
                       if target == "nnhp.fused" or target.startswith("nnhp.fused."))
        assert not fused, f"{name} imports {fused}"


def test_the_kernel_sets_import_no_policy():
    """Inside nnhp.fused imports go one way: the kernel sets know nothing of when they run."""
    graph = import_graph()
    for name in ("nnhp.fused.cpu", "nnhp.fused.cuda", "nnhp.fused.numba_kernels", "nnhp.fused.shared"):
        above = reachable(graph, name) & {"nnhp.fused.policy", "nnhp.fused.steps", "nnhp.fused.table",
                                          "nnhp.fused.calibrate", "nnhp.fused"}
        assert not above, f"{name} imports {sorted(above)}"
