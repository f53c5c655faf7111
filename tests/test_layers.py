"""metalib's layers only import downward: every module's syntax tree, function-level imports included."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "metalib"

# Lowest first. A module may import from its own layer and the layers before it, never after.
LAYERS = [
    ["metalib", "metalib.runtime"],
    ["metalib.data"],
    ["metalib.zoo"],
    ["metalib.embeddings", "metalib.evaluate", "metalib.checkpoint", "metalib.latency", "metalib.augment"],
    ["metalib.train"],
    ["metalib.adversarial", "metalib.fewshot"],
    ["metalib.methods"],
    ["metalib.recipes"],
    ["metalib.classifiers"],
    ["metalib.compare", "metalib.serving"],
    ["metalib.notebook"],
]


def layer_of(module: str) -> int:
    """The layer of ``module``: that of the longest listed name that is it or a package above it."""
    best, depth = None, -1
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and name.count(".") > depth:
                best, depth = rank, name.count(".")
    if best is None:
        raise KeyError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def metalib_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import of a metalib module anywhere in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "metalib":  # `from metalib import zoo`: the names are modules
                found += [(node.lineno, f"metalib.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "metalib" or name.startswith("metalib.")]


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_only_go_down(path):
    here = module_name(path)
    upward = [
        f"{path.name}:{line} imports {name} (layer {layer_of(name)} > {layer_of(here)})"
        for line, name in metalib_imports(path)
        if layer_of(name) > layer_of(here)
    ]
    assert not upward, upward


def test_no_relative_imports():
    """Relative imports would hide from the checks above."""
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}:{node.lineno}"


def test_the_check_sees_function_level_imports(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from metalib import recipes\n    import metalib.notebook\n")
    assert metalib_imports(source) == [(2, "metalib.recipes"), (3, "metalib.notebook")]
    assert layer_of("metalib.recipes.teacher") > layer_of("metalib.zoo")
