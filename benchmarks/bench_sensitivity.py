"""Sensitivity of ALC to its hyperparameters (paper Figs. 5-6): k, alpha, beta and the number of passes m.

One parameter is varied at a time, the others stay at their defaults (ALCConfig, or ``ALC_*`` variables
set by the caller). Each variant is trained with the same budget and seed through nnU-Net's CLI into a
results folder of its own (``--out/models/<variant>``), predicts the test cases and is evaluated on the
clean test labels; the default point is trained once and shared by every sweep::

    python benchmarks/bench_sensitivity.py -d 961 -c 3d_fullres                                   # GPU
    python benchmarks/bench_sensitivity.py -d 961 -c 2d --device cpu \\
        --tiny-network --batch-size 24 --disable-tta --vary num_passes=2,4,8 --vary k=0.25,0.5,0.75,1

Writes ``sensitivity.json`` and ``sensitivity.md`` into ``--out`` after every variant and prints the
tables last; models and predictions go to ``--work`` (default ``<out>/work``, not for git). ``--reuse``
resumes: variants that ``sensitivity.json`` holds for the same dataset, budget and ALC config are kept
without their models (so a sweep can run in pieces across sessions, ``--max-minutes`` ends a piece),
and models and complete predictions in ``--work`` are used again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import (Bench, add_budget_arguments, add_resume_arguments, budget_from_args, out_of_time, work_folder,
                     write_report)

from nnunetv2_alc.config import ALCConfig, ALCConfigError
from nnunetv2_alc.evaluation import evaluate_folders, format_comparison_table
from nnunetv2_alc.jobs import format_seconds

ALC = "nnUNetTrainerALC"
PAPER_GRID = ("num_passes=2,4,8", "k=0.25,0.5,0.75,1.0", "alpha=1,2,3", "beta=1,2,3")  # paper Figs. 5-6, m as ours


def parse_sweeps(values: list[str], defaults: ALCConfig) -> dict[str, list]:
    """``NAME=V1,V2,...`` options as {setting name: values}, each value checked by ALCConfig."""
    sweeps = {}
    for value in values:
        name, sep, items = value.partition("=")
        if not sep or not items:
            raise SystemExit(f"--vary takes NAME=V1,V2,... (e.g. k=0.25,0.5), got {value!r}")
        try:
            sweeps[name] = [getattr(ALCConfig.from_sources({}, **(defaults.as_dict() | {name: item})), name)
                            for item in items.split(",")]
        except ALCConfigError as e:
            raise SystemExit(f"--vary {value}: {e}") from None
    return sweeps


def variant_tag(setting: dict) -> str:
    """Folder-safe name of a variant, e.g. ``default`` or ``k=0.25``."""
    return ",".join(f"{k}={v:g}" for k, v in setting.items()) or "default"


def variants(sweeps: dict[str, list], defaults: ALCConfig) -> list[dict]:
    """The settings to train: each sweep's values that differ from the default, and the default once, first."""
    runs = [{}]
    for name, values in sweeps.items():
        runs += [{name: v} for v in values if v != getattr(defaults, name) and {name: v} not in runs]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", dest="dataset", required=True, help="dataset id or name")
    parser.add_argument("--vary", action="append", help=f"NAME=V1,V2,... (default: {' '.join(PAPER_GRID)})")
    add_budget_arguments(parser)
    parser.add_argument("--reuse", action="store_true", help="keep the variants and models of an earlier run")
    parser.add_argument("--out", default="benchmarks/results/sensitivity")
    add_resume_arguments(parser, "variant")
    args = parser.parse_args()
    budget, out = budget_from_args(args), Path(args.out)
    work = work_folder(args, out)
    try:
        defaults = ALCConfig.from_sources()
    except ALCConfigError as e:
        raise SystemExit(str(e)) from None
    sweeps = parse_sweeps(args.vary or list(PAPER_GRID), defaults)
    bench = Bench(budget, out, args.reuse)
    name, dataset_json = bench.dataset(args.dataset)
    start = time.monotonic()
    report = {"command": "python " + " ".join(sys.argv), "dataset": name, "budget": budget.record(),
              "config": defaults.as_dict(), "defaults": {k: getattr(defaults, k) for k in sweeps}, "sweeps": sweeps,
              "variants": {}}
    kept = earlier_variants(out / "sensitivity.json", report) if args.reuse else {}
    planned = False
    for setting in variants(sweeps, defaults):
        tag = variant_tag(setting)
        if tag in kept:
            print(f"{tag}: kept from {out / 'sensitivity.json'}", flush=True)
            report["variants"][tag] = kept[tag]
            continue
        if out_of_time(start, args.max_minutes):
            break
        if not planned:
            bench.plan(args.dataset, name)
            planned = True
        predictions = work / "predictions" / name / tag
        run = bench.train_and_predict(args.dataset, name, ALC, predictions, tag, setting, work / "models" / tag)
        evaluation = evaluate_folders(str(bench.raw / name / "labelsTs"), {tag: str(predictions)}, num_processes=2,
                                      show_progress=False)
        report["variants"][tag] = {"setting": setting, "run": run, "evaluation": evaluation}
        report["seconds"] = time.monotonic() - start
        write_report(out, "sensitivity", report, format_report(report))
    markdown = format_report(report)
    write_report(out, "sensitivity", report, markdown)
    print("\n" + "\n".join(markdown))
    print(f"\n{len(report['variants'])} of {len(variants(sweeps, defaults))} variants done in "
          f"{format_seconds(time.monotonic() - start)}; raw results in {out / 'sensitivity.json'}")


def earlier_variants(path: Path, report: dict) -> dict:
    """The variants of an earlier ``sensitivity.json`` when its dataset, budget and ALC config are this run's."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    same = [earlier.get(key) == report[key] for key in ("dataset", "config")]
    budget = {k: v for k, v in report["budget"].items() if k not in ("device_name", "torch")}
    if not all(same) or any(earlier["budget"].get(k) != v for k, v in budget.items()):
        print(f"{path} is from another dataset, budget or ALC config: its variants are not kept", flush=True)
        return {}
    return earlier["variants"]


def format_report(report: dict) -> list[str]:
    """One table per swept parameter (its default point included) of the variants trained so far."""
    budget = report["budget"]
    lines = [f"# Sensitivity of ALC ({budget['device_name']}, {report['dataset']}, {budget['configuration']}, "
             f"{budget['epochs']} epochs x {budget['iterations']} iterations, seed {budget['seed']})", "",
             f"Command: `{report['command']}`", "", f"Defaults: {report['defaults']}", ""]
    if not report["variants"]:
        return lines + ["No variant trained yet."]
    first = next(iter(report["variants"].values()))["evaluation"]
    for name, values in report["sweeps"].items():
        rows = {}
        default = report["defaults"][name]
        for value in sorted({*values, default}):
            tag = "default" if value == default else variant_tag({name: value})
            if tag in report["variants"]:
                label = f"{name} = {value:g}" + (" (default)" if tag == "default" else "")
                rows[label] = report["variants"][tag]["evaluation"]["methods"][tag]
        if rows:
            table = format_comparison_table({"labels": first["labels"], "cases": first["cases"], "methods": rows})
            lines += [f"## {name}", "", table, ""]
    return lines


if __name__ == "__main__":
    main()
