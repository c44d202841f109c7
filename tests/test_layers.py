"""Dependencies point one way: no module imports from a layer above its own.

Every module under gankit/ is parsed with ast; every ``import gankit...`` and
``from gankit... import ...`` it holds (at the top or inside a function) is mapped to its
layer and compared with the importer's. The layers, lowest first, are the ones
ARCHITECTURE.md describes; keep the two in step.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gankit"

# Lowest first. A module belongs to the layer of its longest listed prefix: a package name
# covers its submodules; an entry naming one module (e.g. "gankit.viz", the package's own
# __init__) only where no longer entry matches. There is no allowlist: every upward import
# is a failure.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # no gankit imports beyond each other: errors, name lookup, process settings, the
    # torchrun plumbing (collectives; models average gradients with it) and reading a
    # checkpoint file (a text GAN's model.init_from reads another run's weights) and writing
    # a file whole or not at all (the trainer, gankit eval and the metrics' pictures)
    ("base", ("gankit", "gankit.errors", "gankit.registry", "gankit.runtime",
              "gankit.distributed", "gankit.checkpoint_format", "gankit.files")),
    ("config", ("gankit.config",)),
    # the parts a model is built from, and the pictures of samples (gankit/viz/__init__.py)
    ("parts", ("gankit.data", "gankit.nets", "gankit.objectives", "gankit.viz")),
    ("models", ("gankit.models",)),
    # measuring samples and runs; training evaluates with them, so they sit below it
    ("metrics", ("gankit.metrics",)),
    ("training", ("gankit.training",)),
    # using a trained generator: one handle for every generator, projection, directions,
    # mixing; above the metrics (perceptual features, judges), below the commands
    ("use", ("gankit.use",)),
    # what a person runs: the library front (api), the commands, the lecture demos, reports
    ("app", ("gankit.api", "gankit.cli", "gankit.__main__", "gankit.explain", "gankit.export",
             "gankit.metrics.cli", "gankit.use.cli", "gankit.studio", "gankit.viz.browser", "gankit.viz.presets", "gankit.viz.report",
             "gankit.viz.runs", "gankit.viz.sweep", "gankit.viz.svg", "gankit.viz.tune")),
]


def _rank() -> dict[str, int]:
    return {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> int:
    ranks, parts = _rank(), module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        # "gankit" (the package's own __init__) covers itself only: a new top-level module
        # must be given a layer here
        if prefix in ranks and (n > 1 or len(parts) == 1):
            return ranks[prefix]
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and ARCHITECTURE.md)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (ROOT.parent / rel).with_suffix(".py").is_file() or (ROOT.parent / rel / "__init__.py").is_file()


def gankit_imports(path: Path) -> set[str]:
    """The gankit modules ``path`` imports anywhere in it (``from pkg import mod`` -> pkg.mod)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "gankit":
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if _exists(sub) else source)
    return found


def upward_imports() -> list[tuple[str, str]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        for target in sorted(gankit_imports(path)):
            if layer_of(target) > layer_of(module):
                out.append((module, target))
    return out


def test_every_module_has_a_layer():
    for path in ROOT.rglob("*.py"):
        layer_of(module_name(path))


def test_no_module_imports_from_a_higher_layer():
    found = upward_imports()
    names = [name for name, _ in LAYERS]
    assert not found, "upward imports (importer -> imported):\n" + "\n".join(
        f"  {a} ({names[layer_of(a)]}) -> {b} ({names[layer_of(b)]})" for a, b in found)


def test_the_checker_sees_function_level_imports(tmp_path):
    mod = tmp_path / "gankit" / "config.py"
    mod.parent.mkdir()
    mod.write_text("def f():\n    from gankit.models import MODELS\n    import gankit.cli\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path / "gankit"
    try:
        assert gankit_imports(mod) == {"gankit.models", "gankit.cli"}
    finally:
        ROOT = saved


def test_a_new_top_level_module_needs_a_layer():
    assert layer_of("gankit") == 0 and layer_of("gankit.distributed") == 0
    try:
        layer_of("gankit.something_new")
    except AssertionError as e:
        assert "in no layer" in str(e)
    else:
        raise AssertionError("an unlisted top-level module fell into the base layer")
