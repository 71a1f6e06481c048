"""The repository's package-level import graph, read from the source (``ast``, nothing is imported).

``python tests/import_graph.py`` prints one line per package: the packages it imports. The units are the
top-level packages, with the applications of ``nnunetv2_alc`` (demo, synthetic data, report) and its
``trainers``/``evaluation`` subpackages shown apart; ``benchmarks`` (scripts) counts as one unit.
``tests/test_architecture.py`` checks the rules of docs/extending.md on this graph and that every
third-party import is a declared dependency.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nnunetv2_alc", "noise_generation", "dataset_conversion")  # what the wheel installs
SCRIPTS = ("benchmarks",)
SUBPACKAGES = ("demo", "synthetic", "report", "trainers", "evaluation")  # of nnunetv2_alc, shown apart
APPLICATIONS = ("nnunetv2_alc.demo", "nnunetv2_alc.synthetic", "nnunetv2_alc.report")
CORE = ("nnunetv2_alc", "nnunetv2_alc.trainers", "nnunetv2_alc.evaluation")  # the training core
OWN = PACKAGES + tuple(Path(p).stem for p in (ROOT / "benchmarks").glob("*.py"))  # bench scripts import harness


def unit_of_module(module: str) -> str | None:
    """``nnunetv2_alc.report.run`` -> ``nnunetv2_alc.report``; ``None`` for modules outside the repository."""
    parts = module.split(".")
    if parts[0] == "nnunetv2_alc":
        return f"nnunetv2_alc.{parts[1]}" if len(parts) > 1 and parts[1] in SUBPACKAGES else "nnunetv2_alc"
    if parts[0] in PACKAGES:
        return parts[0]
    return "benchmarks" if parts[0] in OWN else None


def source_files() -> dict[str, list[Path]]:
    """Python files of each unit."""
    files = defaultdict(list)
    for top in PACKAGES + SCRIPTS:
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            files["benchmarks" if top in SCRIPTS else unit_of_module(module)].append(path)
    return files


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved), at any depth of the file."""
    package = ".".join(path.relative_to(ROOT).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
    return names


def import_graph() -> dict[str, set[str]]:
    """unit -> the other units it imports."""
    graph = {}
    for unit, paths in source_files().items():
        targets = {unit_of_module(name) for path in paths for name in imported_modules(path)}
        graph[unit] = {t for t in targets if t is not None and t != unit}
    return graph


def third_party_imports(units) -> dict[str, set[Path]]:
    """Top-level names of the non-standard-library modules imported by ``units`` -> files importing them."""
    files = source_files()
    found = defaultdict(set)
    for unit in units:
        for path in files[unit]:
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and unit_of_module(name) is None:
                    found[top].add(path.relative_to(ROOT))
    return found


def main() -> None:
    for unit, targets in sorted(import_graph().items()):
        print(f"{unit:26} -> {', '.join(sorted(targets)) or '(nothing of ours)'}")


if __name__ == "__main__":
    main()
