"""The packages' layering: schemas and runners (the formats, the engines) import nothing of the
project above them, transforms import schemas and runners, pipelines import anything; and no
module imports itself back through others (functions' own imports included)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = {'schemas': 0, 'runners': 0, 'transforms': 1, 'pipelines': 2}


def modules() -> dict:
    found = {}
    for package in LAYERS:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                    found[module[:-len('.__init__')] if module.endswith('.__init__') else module] = path
    return found


def import_graph() -> dict:
    """{module: the project's modules it imports, anywhere in it}."""
    known, graph = modules(), {}
    for module, path in known.items():
        names = set()
        for node in ast.walk(ast.parse(open(path, encoding='utf-8').read(), path)):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f'{node.module}.{a.name}' for a in node.names)
        graph[module] = {n for n in names if n in known and n != module}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = [f'{a} -> {b}' for a, targets in sorted(import_graph().items()) for b in sorted(targets)
              if LAYERS[b.split('.')[0]] > LAYERS[a.split('.')[0]]
              or (a.split('.')[0] != b.split('.')[0] and LAYERS[b.split('.')[0]] == LAYERS[a.split('.')[0]])]
    assert not upward


def test_no_import_cycles():
    assert not cycles(import_graph())


def test_the_checks_see_a_cycle_and_an_upward_import():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    graph = import_graph()
    assert 'schemas.shards' in graph['pipelines.run_state'] and 'pipelines.graph' in graph['pipelines.build']
