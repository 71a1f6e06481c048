"""Accuracy of ALC against the baselines and ablations (paper Tables I-III).

For each HQ setting (one tagged raw dataset per setting, with clean test labels in ``labelsTs``), every
trainer is trained with the same budget and seed through nnU-Net's CLI (fold ``all``: all training
cases), predicts the test cases, and is evaluated against the clean test labels with Dice, Jaccard,
HD95 and ASD (mean +- std over cases). See ``harness.py`` for how the commands are run.

The same script runs on LA or NIH converted with our tools (conversion, then ``nnUNetv2_alc_make_noisy``
at 10% and 20% HQ, one dataset id each), or on the synthetic benchmark datasets::

    nnUNetv2_alc_synthetic -d 961 --kind benchmark --hq-fraction 0.1 --seed 0
    nnUNetv2_alc_synthetic -d 962 --kind benchmark --hq-fraction 0.2 --seed 0
    python benchmarks/bench_accuracy.py --dataset 10%=961 --dataset 20%=962 -c 3d_fullres        # GPU
    python benchmarks/bench_accuracy.py --dataset 10%=961 --dataset 20%=962 \\
        -c 2d --device cpu --tiny-network --batch-size 12 --epochs 40 --iterations 25 --disable-tta  # CPU

(environment: nnUNet_raw / nnUNet_preprocessed / nnUNet_results; ``ALC_*`` variables reach every
trainer). Writes ``accuracy.json`` (raw, per case) and ``accuracy.md`` into ``--out`` after every
setting and prints the tables last. ``bench_label_correction.py`` reads the label-correction curves
of the ALC models trained here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from harness import Bench, add_budget_arguments, budget_from_args, parse_settings, write_report

from nnunetv2_alc.evaluation import evaluate_folders, format_comparison_table
from nnunetv2_alc.evaluation.background import background_false_positives, format_background_table
from nnunetv2_alc.jobs import format_seconds
from nnunetv2_alc.trainer_registry import BENCHMARK_TRAINERS, display_name

TRAINERS = BENCHMARK_TRAINERS  # H-Sup, HL-Sup (ours, stock), Mean Teacher, ALC w/o LS, ALC w/o LR, ALC
ALC = display_name("nnUNetTrainerALC")


def paired_dice(evaluation: dict, reference: str = ALC) -> list[str]:
    """Per-case Dice of ``reference`` minus each other method (mean over labels): mean ± std and wins.

    The methods see the same test cases, so the paired difference says more than two overlapping
    mean ± std columns.
    """
    methods = evaluation["methods"]
    if reference not in methods or len(methods) < 2:
        return []

    def dice(name: str) -> np.ndarray:
        return np.array([np.mean([m["dice"] for m in methods[name]["per_case"][case].values()])
                         for case in evaluation["cases"]])

    ours = dice(reference)
    lines = [f"Paired over the {len(ours)} test cases: Dice of {reference} minus the method's, in % points.", "",
             "| Method | mean ± std | cases where ALC is better |", "|---|---:|---:|"]
    for name in methods:
        if name != reference:
            difference = 100 * (ours - dice(name))
            lines.append(f"| {name} | {difference.mean():+.2f} ± {difference.std(ddof=1):.2f} | "
                         f"{int((difference > 0).sum())} of {len(difference)} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", required=True, help="NAME=DATASET_ID, once per HQ setting")
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    add_budget_arguments(parser)
    parser.add_argument("--reuse", action="store_true",
                        help="keep trained models (checkpoint_final.pth) and complete prediction folders "
                             "of an earlier run")
    parser.add_argument("--out", default="benchmarks/results/accuracy")
    args = parser.parse_args()
    settings, budget, out = parse_settings(args.dataset), budget_from_args(args), Path(args.out)
    bench = Bench(budget, out, args.reuse)
    start = time.monotonic()
    report = {"command": "python " + " ".join(sys.argv), "budget": budget.record(), "trainers": args.trainers,
              "alc_environment": {k: v for k, v in bench.env.items() if k.startswith("ALC_")}, "settings": {}}
    title = (f"# Accuracy benchmark ({report['budget']['device_name']}, {budget.configuration}, "
             f"{budget.epochs} epochs x {budget.iterations} iterations, seed {budget.seed})")
    markdown = [title, "", f"Command: `{report['command']}`", ""]
    for setting, dataset_id in settings.items():
        name, dataset_json = bench.dataset(dataset_id)
        tags = dataset_json["label_quality"]
        num_hq = sum(v == "HQ" for v in tags.values())
        print(f"\n== {setting}: {name} ({num_hq} HQ / {len(tags)} training cases)", flush=True)
        bench.plan(dataset_id, name)
        runs = {t: bench.train_and_predict(dataset_id, name, t, out / "predictions" / name / t) for t in args.trainers}
        evaluation = evaluate_folders(str(bench.raw / name / "labelsTs"),
                                      {display_name(t): str(out / "predictions" / name / t) for t in args.trainers},
                                      num_processes=2, output_folder=str(out / "evaluation" / name),
                                      show_progress=False)
        background = background_false_positives(str(bench.raw / name / "labelsTs"),
                                                {display_name(t): str(out / "predictions" / name / t)
                                                 for t in args.trainers})
        entry = {"dataset": name, "dataset_seed": dataset_json.get("synthetic", {}).get("seed"), "hq_cases": num_hq,
                 "training_cases": len(tags), "runs": runs, "evaluation": evaluation,
                 "table": format_comparison_table(evaluation), "background": background}
        report["settings"][setting] = entry
        markdown += [f"## {setting} HQ ({num_hq} of {len(tags)} training cases, {name})", "", entry["table"], "",
                     *paired_dice(evaluation), "Foreground on organ-free test slices:", "",
                     format_background_table(background), ""]
        report["seconds"] = time.monotonic() - start
        write_report(out, "accuracy", report, markdown)
    print("\n" + "\n".join(markdown))
    print(f"\nDone in {format_seconds(report['seconds'])}; raw results in {out / 'accuracy.json'}")


if __name__ == "__main__":
    main()
