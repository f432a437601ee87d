"""The package's imports: no circles, and a direction (:data:`LAYERS`: cli -> photo / video / serve /
training -> inference -> model files -> models -> data -> base), counting every ``mattecli`` import, at
module level or inside a function.

A circle (``evaluation -> training.trainer -> evaluation``) works only as long as each side imports the
other late enough, and it ties modules together that should be readable and testable alone. The graph
is built from the source with :mod:`ast`, so lazy imports (the ones that keep ``matte --help`` fast)
count as much as module-level ones. A package's ``__init__`` is a module of its own (``mattecli.training``);
``from mattecli.training import checkpoint`` is an edge to the submodule, ``from mattecli.training import
train`` one to the package. Importing a submodule also runs its packages' ``__init__`` files; those
implicit edges are left out (every package would otherwise form a circle with its own submodules), and so
are imports under ``if __name__ == "__main__":`` (they run only when the module is the program, ``python -m``,
and then it is ``__main__``, not the package module that the other side imports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import mattecli

ROOT = Path(mattecli.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _is_main_guard(node: ast.AST) -> bool:
    """``if __name__ == "__main__":``"""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    return (
        isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _import_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node of ``tree`` except those under a top-level ``__main__`` guard."""
    kept = [node for node in tree.body if not _is_main_guard(node)]
    return [child for node in kept for child in ast.walk(node)]


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The mattecli modules that ``module`` imports anywhere in its source (``__main__`` guards aside)."""
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(module, path, node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == 1:
                return [*stack[stack.index(successor) :], successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def missing_targets() -> list[str]:
    """``module -> target`` for every import of a ``mattecli`` module that the source tree does not hold
    (``mattecli.bundled`` is the weights folder, mapped in at install time)."""
    modules = all_modules()
    missing = []
    for module, path in modules.items():
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("mattecli")
            ):
                targets = [_absolute(module, path, node)]
            else:
                continue
            missing += [
                f"{module} -> {target}"
                for target in targets
                if target.split(".")[0] == "mattecli"
                and target not in modules
                and target != "mattecli.bundled"
            ]
    return missing


def test_every_import_names_a_module_of_the_tree() -> None:
    """A moved module whose old path is still imported somewhere fails here, not only in the installed
    wheel (an editable install can serve the old file from another checkout)."""
    assert missing_targets() == []


def test_the_package_has_no_import_circles() -> None:
    graph = import_graph()
    assert "mattecli.training" in graph and "mattecli.cli.app" in graph, sorted(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module that importing ``start`` can import, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for successor in graph[todo.pop()] - seen:
            seen.add(successor)
            todo.append(successor)
    return seen


def test_model_files_never_import_training() -> None:
    """Training imports the model-file modules (checkpoint format, run folders, loading), never the
    reverse: loading a model, even from a run folder, must not pull in the trainer. Checked on everything
    each model-file module can reach, not only its own imports."""
    graph = import_graph()
    model_files = [
        name for name in graph if name == "mattecli.modelfiles" or name.startswith("mattecli.modelfiles.")
    ]
    assert "mattecli.modelfiles.loading" in model_files and "mattecli.modelfiles.checkpoint" in model_files
    assert "mattecli.modelfiles.checkpoint" in graph["mattecli.training.trainer"]
    for name in model_files:
        training = sorted(m for m in reachable(graph, name) if m.split(".")[:2] == ["mattecli", "training"])
        assert not training, f"{name} imports {', '.join(training)}"


def test_the_data_pipeline_takes_the_transition_band_without_the_losses() -> None:
    """The losses' transition band is plain numbers (:mod:`mattecli.transition_band`): the NumPy data
    pipeline reads it there, without importing the torch losses."""
    graph = import_graph()
    assert "mattecli.transition_band" in graph["mattecli.data.augment"]
    assert "mattecli.losses" not in reachable(graph, "mattecli.data.augment")
    assert not graph["mattecli.transition_band"]


def test_the_checker_sees_lazy_relative_and_package_imports(tmp_path: Path) -> None:
    """The checker itself, on a made-up package: function-level and relative imports are edges,
    ``from package import submodule`` points at the submodule, and a circle is named."""
    package = tmp_path / "mattecli" / "pkg"
    package.mkdir(parents=True)
    files = {
        "mattecli.pkg": ("__init__.py", "from .a import x\n"),
        "mattecli.pkg.a": ("a.py", "def f():\n    from . import b\n"),
        "mattecli.pkg.b": ("b.py", "import os\nfrom mattecli.pkg import a\n"),
        "mattecli.pkg.c": ("c.py", "from mattecli.pkg import x\nimport mattecli.pkg.b\n"),
        "mattecli.pkg.d": ("d.py", "import os\nif __name__ == '__main__':\n    from mattecli.pkg import e\n"),
        "mattecli.pkg.e": ("e.py", "from mattecli.pkg import d\n"),
    }
    for name, text in files.values():
        (package / name).write_text(text)
    edges = {module: imports_of(module, package / name, set(files)) for module, (name, _) in files.items()}
    assert edges == {
        "mattecli.pkg": {"mattecli.pkg.a"},
        "mattecli.pkg.a": {"mattecli.pkg.b"},
        "mattecli.pkg.b": {"mattecli.pkg.a"},
        "mattecli.pkg.c": {"mattecli.pkg", "mattecli.pkg.b"},
        "mattecli.pkg.d": set(),  # the __main__ guard's import runs only as a program
        "mattecli.pkg.e": {"mattecli.pkg.d"},
    }
    assert find_cycle(edges) == ["mattecli.pkg.a", "mattecli.pkg.b", "mattecli.pkg.a"]
    assert find_cycle({**edges, "mattecli.pkg.b": set()}) is None


# -- layers ------------------------------------------------------------------------------------------------

#: The package's layers, top to bottom: a module may import its own layer's modules (``sideways``) or any
#: layer below, never one above. The commands do not import each other (``matte serve`` does not reach
#: into ``matte image``'s pipeline); what they share lives below them. Training is a command too: it
#: imports downward only. Nothing imports the command line. A module is placed by its longest prefix here.
LAYERS: list[tuple[str, bool, tuple[str, ...]]] = [
    ("cli", True, ("mattecli.cli", "mattecli.__main__")),  # __main__ runs the command line
    ("commands", False, ("mattecli.photo", "mattecli.video", "mattecli.serve", "mattecli.training")),
    (
        "inference",
        True,
        (
            "mattecli.inference",
            "mattecli.evaluation",
            # old import paths, kept as re-exports of the model-file modules
            "mattecli.config",
            "mattecli.loading",
            "mattecli.weights",
            "mattecli.onnx_export",
        ),
    ),
    ("model files", True, ("mattecli.modelfiles",)),
    ("models", True, ("mattecli.models", "mattecli.tiling", "mattecli.losses")),
    ("data", True, ("mattecli.data",)),
    (
        "base",
        True,
        (
            "mattecli",  # the package itself: __version__ and lazy names, resolved at run time
            "mattecli.errors",
            "mattecli.atomic",
            "mattecli.console",
            "mattecli.device",
            "mattecli.extras",
            "mattecli.lazy_exports",
            "mattecli.certainty",
            "mattecli.transition_band",
            "mattecli.metrics",
            "mattecli.image",
            "mattecli.compositing",
            "mattecli.foreground",
            "mattecli.refinement",
            "mattecli.render",
        ),
    ),
]


def layer_of(module: str) -> tuple[int, str, bool, str]:
    """(rank from the bottom, layer name, sideways allowed, the prefix that placed it)."""
    best = None
    for index, (name, sideways, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[3])
            ):
                best = (len(LAYERS) - 1 - index, name, sideways, prefix)
    assert best is not None, f"{module} is in no layer of LAYERS: place it"
    return best


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module in sorted(graph):
        rank, name, _, unit = layer_of(module)
        for target in sorted(graph[module]):
            target_rank, target_name, sideways, target_unit = layer_of(target)
            if target_rank < rank or unit == target_unit:
                continue
            if target_rank == rank and sideways:
                continue
            found.append(f"{module} ({name}) -> {target} ({target_name})")
    return found


def test_imports_go_down_the_layers() -> None:
    graph = import_graph()
    for module in graph:
        layer_of(module)  # every module is placed
    assert layer_of("mattecli.photo.pipeline")[1] == "commands"
    assert layer_of("mattecli.image.decoding")[1] == "base"
    assert layer_of("mattecli.modelfiles.loading")[1] == "model files"
    violations = layer_violations(graph)
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_the_layer_rule_catches_upward_and_sideways_imports() -> None:
    graph = {
        "mattecli.image.decoding": {"mattecli.photo.pipeline"},  # up
        "mattecli.serve.render": {"mattecli.photo.outputs", "mattecli.render"},  # sideways between commands
        "mattecli.training.trainer": {"mattecli.cli.app", "mattecli.evaluation"},  # the command line
        "mattecli.models.late_fusion": {"mattecli.models.config", "mattecli.errors"},  # fine
        "mattecli.photo.outputs": set(),
        "mattecli.photo.pipeline": {"mattecli.photo.outputs"},  # within one package: fine
    }
    assert layer_violations(graph) == [
        "mattecli.image.decoding (base) -> mattecli.photo.pipeline (commands)",
        "mattecli.serve.render (commands) -> mattecli.photo.outputs (commands)",
        "mattecli.training.trainer (commands) -> mattecli.cli.app (cli)",
    ]


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The import graph between top-level packages and modules (``mattecli.image``, ``mattecli.render``)."""

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {unit(module): set() for module in graph}
    for module, targets in graph.items():
        packages[unit(module)].update(unit(target) for target in targets if unit(target) != unit(module))
    return packages


def test_no_package_imports_back_into_a_package_that_imports_it() -> None:
    """Between packages too there is no circle (``image`` held ``matte image``'s pipeline, which imports
    ``compositing``, which imports ``image``; the pipeline is :mod:`mattecli.photo` now)."""
    packages = package_graph(import_graph())
    assert "mattecli.compositing" not in packages["mattecli.image"]
    cycle = find_cycle(packages)
    assert cycle is None, "import circle between packages: " + " -> ".join(cycle or [])
