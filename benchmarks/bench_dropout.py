"""Which dropout should the teacher's passes use? Each placement compared on validation data only.

Every trainer (default: ALC and Mean Teacher) is trained once per dropout placement with the same budget
and seed through nnU-Net's CLI (fold ``all`` of the training dataset ``-d``), each placement into a
results folder of its own (``--out/models/<placement>``). The models then predict the test images of a
*validation* dataset (``--validation``: another draw of the same kind, e.g. the synthetic generator
with another seed), never the training dataset's test cases, so the choice leaves the accuracy
benchmark's test set untouched. Reported per model:

- Dice, Jaccard, HD95, ASD on the validation cases, and the organ-free validation slices it marks;
- the refinement diagnostics of training (mean over the last ``--last`` epochs, from the checkpoint's
  log): entropy of the Eq. 5 weights relative to ``log m``, the fraction of LQ voxels where the refined
  label differs from ``argmax Psi_avg``, the spread of ``U`` (Eq. 7) over LQ samples, the rank
  correlation of ``U`` with the Dice of the refined label to the clean one (negative: selection picks
  the better labels), and the Dice to the clean labels of the noisy, pseudo and refined labels.

::

    nnUNetv2_alc_synthetic -d 961 --kind benchmark --hq-fraction 0.1 --seed 0
    nnUNetv2_alc_synthetic -d 964 --kind benchmark --hq-fraction 0.1 --seed 1   # validation draw
    python benchmarks/bench_dropout.py -d 961 --validation 964 -c 2d --device cpu --tiny-network \\
        --batch-size 12 --disable-tta --epochs 40 --iterations 25 --seed 0

Writes ``dropout.json`` and ``dropout.md`` into ``--out`` after every model; ``--reuse`` keeps models and
complete predictions already there (a stopped run resumes where it stopped).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness import Bench, add_budget_arguments, budget_from_args, logged_curves, tail_means, write_report

from nnunetv2_alc.config import DROPOUT_PLACEMENTS
from nnunetv2_alc.evaluation import evaluate_folders, format_comparison_table
from nnunetv2_alc.evaluation.background import background_false_positives, format_background_table
from nnunetv2_alc.jobs import format_seconds
from nnunetv2_alc.progress import DIAGNOSTIC_KEYS, LABEL_DICE_KEYS
from nnunetv2_alc.trainer_registry import display_name

DEFAULT_TRAINERS = ("nnUNetTrainerALC", "nnUNetTrainerMeanTeacher")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-d", dest="dataset", required=True, help="training dataset id or name")
    parser.add_argument("--validation", required=True, help="validation dataset id or name (its imagesTs/labelsTs)")
    parser.add_argument("--placements", nargs="+", default=["decoder", "lineage"], choices=DROPOUT_PLACEMENTS)
    parser.add_argument("--p", nargs="+", type=float, help="dropout rate per placement (default: each at its "
                        "ALCConfig default, 0.1; e.g. --p 0.1 0.5 for decoder at 0.1 and lineage at 0.5)")
    parser.add_argument("--trainers", nargs="+", default=list(DEFAULT_TRAINERS))
    parser.add_argument("--last", type=int, default=5, help="epochs averaged for the training diagnostics")
    add_budget_arguments(parser)
    parser.add_argument("--reuse", action="store_true", help="keep models and complete predictions already in --out")
    parser.add_argument("--out", default="benchmarks/results/dropout")
    args = parser.parse_args()
    if args.p is not None and len(args.p) != len(args.placements):
        raise SystemExit(f"--p takes one rate per placement ({len(args.placements)}), got {len(args.p)}")
    budget, out = budget_from_args(args), Path(args.out)
    bench = Bench(budget, out, args.reuse)
    name, _ = bench.dataset(args.dataset)
    validation, _ = bench.dataset(args.validation)
    start = time.monotonic()
    report = {"command": "python " + " ".join(sys.argv), "dataset": name, "validation": validation,
              "budget": budget.record(), "models": {}}
    bench.plan(args.dataset, name)
    rates = args.p or [None] * len(args.placements)
    labels = str(bench.raw / validation / "labelsTs")
    for placement, p in zip(args.placements, rates):
        settings = {"dropout_placement": placement} | ({"dropout_p": p} if p is not None else {})
        tag = placement if p is None else f"{placement}_p{p:g}"
        for trainer in args.trainers:
            predictions = out / "predictions" / validation / tag / trainer
            run = bench.train_and_predict(args.dataset, name, trainer, predictions, tag, settings, out / "models" / tag,
                                          images=bench.raw / validation / "imagesTs")
            label = f"{display_name(trainer)} [{tag}]"
            evaluation = evaluate_folders(labels, {label: str(predictions)}, num_processes=2, show_progress=False)
            background = background_false_positives(labels, {label: str(predictions)})[label]
            report["models"][label] = {"trainer": trainer, "settings": settings, "run": run, "evaluation": evaluation,
                                       "background": background,
                                       "diagnostics": tail_means(logged_curves(
                                           Path(run["model"]) / "checkpoint_final.pth",
                                           DIAGNOSTIC_KEYS + LABEL_DICE_KEYS), args.last)}
            report["seconds"] = time.monotonic() - start
            markdown = format_report(report, args.last)
            write_report(out, "dropout", report, markdown)
    print("\n" + "\n".join(markdown))
    print(f"\nDone in {format_seconds(report['seconds'])}; raw results in {out / 'dropout.json'}")


def format_report(report: dict, last: int) -> list[str]:
    budget, models = report["budget"], report["models"]
    first = next(iter(models.values()))["evaluation"]
    evaluation = {"labels": first["labels"], "cases": first["cases"],
                  "methods": {label: m["evaluation"]["methods"][label] for label, m in models.items()}}
    rows = ["| Model | " + " | ".join(DIAGNOSTIC_KEYS + LABEL_DICE_KEYS) + " |",
            "|---|" + "---:|" * len(DIAGNOSTIC_KEYS + LABEL_DICE_KEYS)]
    rows += [f"| {label} | " + " | ".join(f"{m['diagnostics'][k]:.4f}" for k in DIAGNOSTIC_KEYS + LABEL_DICE_KEYS)
             + " |" for label, m in models.items()]
    return [f"# Dropout placement ({budget['device_name']}, trained on {report['dataset']}, validated on "
            f"{report['validation']}, {budget['configuration']}, {budget['epochs']} epochs x {budget['iterations']} "
            f"iterations, seed {budget['seed']})", "", f"Command: `{report['command']}`", "",
            "## Validation cases", "", format_comparison_table(evaluation), "",
            "Foreground on organ-free validation slices:", "",
            format_background_table({label: m["background"] for label, m in models.items()}), "",
            f"## Training diagnostics (mean over the last {last} epochs)", "", *rows, ""]


if __name__ == "__main__":
    main()
