"""The package boundaries of docs/extending.md and the declared dependencies, checked on the source."""

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from import_graph import (APPLICATIONS, CORE, ROOT, import_graph, imported_modules,  # noqa: E402
                          third_party_imports, unit_of_module)

# the libraries the product design names: they stay declared even where only nnU-Net imports them
REQUIRED = {"nnunetv2", "torch", "batchgenerators", "batchgeneratorsv2", "simpleitk", "numpy", "acvl-utils"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    return {normalized(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def distributions(module: str) -> set[str]:
    return {normalized(d) for d in importlib.metadata.packages_distributions().get(module, [])}


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_no_cycle_between_packages(graph):
    def visit(unit, path):
        assert unit not in path, f"import cycle: {' -> '.join(path + [unit])}"
        for target in graph.get(unit, ()):
            visit(target, path + [unit])

    for unit in graph:
        visit(unit, [])


def test_training_core_imports_no_tool_and_no_application(graph):
    for unit in CORE:
        bad = graph[unit] & ({"noise_generation", "dataset_conversion", "benchmarks"} | set(APPLICATIONS))
        assert not bad, f"{unit} (training core) imports {sorted(bad)}"


@pytest.mark.parametrize("unit", ["dataset_conversion", "nnunetv2_alc.report", "noise_generation"])
def test_tools_import_only_the_core(graph, unit):
    assert graph[unit] <= set(CORE), f"{unit} imports {sorted(graph[unit] - set(CORE))}"


def test_benchmarks_do_not_import_the_demo(graph):
    assert "nnunetv2_alc.demo" not in graph["benchmarks"]


def test_every_third_party_import_of_the_package_is_declared():
    units = [u for u in import_graph() if u != "benchmarks"]
    deps = declared()
    for module, files in third_party_imports(units).items():
        providers = distributions(module)
        assert providers, f"{module} (imported by {sorted(map(str, files))}) is not installed"
        assert providers & deps, (f"{module} (imported by {sorted(map(str, files))}) comes from {sorted(providers)}, "
                                  "which pyproject.toml does not declare")


def test_tests_and_benchmarks_use_declared_libraries():
    deps = declared("test")
    test_files = sorted((ROOT / "tests").glob("*.py"))
    local = {p.stem for p in test_files}  # helper modules of the tests
    modules = third_party_imports(["benchmarks"])
    for path in test_files:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names | local and unit_of_module(name) is None:
                modules.setdefault(top, set()).add(path.relative_to(ROOT))
    for module, files in modules.items():
        assert distributions(module) & deps, f"{module} (imported by {sorted(map(str, files))}) is not declared"


def test_libraries_of_the_product_design_stay_declared():
    assert REQUIRED <= declared(), f"pyproject.toml lacks {sorted(REQUIRED - declared())}"
