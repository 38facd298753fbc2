"""The import graph of the vpr_ros package, read with ast (no module is imported).

Every ``import`` / ``from ... import`` of a vpr_ros module is an edge, at module level or inside
a function; ``if TYPE_CHECKING:`` blocks are skipped (they never run). ``from pkg import name``
points at the submodule ``pkg.name`` when there is one, else at ``pkg`` (its __init__).
"""
import ast
from pathlib import Path
from typing import Dict, List, Tuple

LAYERS = {'vpr_ros.nodes': 'nodes', 'vpr_ros.graph': 'graph', 'vpr_ros.cli': 'cli'}


def layer(module: str) -> str:
    """'nodes', 'graph', 'cli' or 'core'."""
    for prefix, name in LAYERS.items():
        if module == prefix or module.startswith(prefix + '.'):
            return name
    return 'core'


def modules(package_dir: Path) -> Dict[str, Tuple[Path, bool]]:
    """{dotted name: (file, is a package __init__)} of every .py under ``package_dir``."""
    root, out = package_dir.parent, {}
    for path in sorted(package_dir.rglob('*.py')):
        parts = list(path.relative_to(root).with_suffix('').parts)
        is_pkg = parts[-1] == '__init__'
        out['.'.join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking(node) -> bool:
    test = getattr(node, 'test', None)
    return isinstance(node, ast.If) and (
        getattr(test, 'id', None) == 'TYPE_CHECKING' or getattr(test, 'attr', None) ==
        'TYPE_CHECKING')


def _targets(node, package: str) -> List[List[str]]:
    """Candidate dotted names per imported name, most specific first."""
    if isinstance(node, ast.Import):
        return [[a.name] for a in node.names]
    if node.level:
        base = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(base + ([node.module] if node.module else []))
    else:
        base = node.module or ''
    return [[f'{base}.{a.name}', base] for a in node.names]


def import_graph(package_dir: Path) -> Dict[Tuple[str, str], int]:
    """{(importer, imported): first line number} between modules of the package."""
    mods = modules(Path(package_dir))
    top = Path(package_dir).name

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition('.')[0]
        return name

    edges: Dict[Tuple[str, str], int] = {}
    for mod, (path, is_pkg) in mods.items():
        package = mod if is_pkg else mod.rpartition('.')[0]
        stack = [ast.parse(path.read_text(), str(path))]
        while stack:
            node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if _type_checking(child):
                    stack.extend(child.orelse)
                    continue
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for candidates in _targets(child, package):
                        if candidates[0].split('.')[0] != top:
                            continue
                        target = resolve(candidates[0])
                        if target and target != mod:
                            edges.setdefault((mod, target), child.lineno)
                stack.append(child)
    return edges


def import_cycles(edges) -> List[List[str]]:
    """Strongly connected components with more than one module (each holds a cycle)."""
    graph: Dict[str, List[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out
