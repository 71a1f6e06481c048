"""Accuracy of ALC against the baselines and ablations (paper Tables I-III), and label correction (Fig. 3).

For each HQ setting (one tagged raw dataset per setting, with clean test labels in ``labelsTs``), every
trainer is trained with the same budget through nnU-Net's CLI (fold ``all``: all training cases),
predicts the test cases, and is evaluated against the clean test labels with Dice, Jaccard, HD95 and
ASD (mean +- std over cases). The label-correction curves (Dice against the clean labels of the noisy,
pseudo and refined labels of the LQ patches trained on) are read from the ALC run's checkpoint.

The same script runs on LA or NIH converted with our tools (conversion, then ``nnUNetv2_alc_make_noisy``
at 10% and 20% HQ, one dataset id each), or on the synthetic benchmark datasets::

    nnUNetv2_alc_synthetic -d 961 --kind benchmark --hq-fraction 0.1 --seed 0
    nnUNetv2_alc_synthetic -d 962 --kind benchmark --hq-fraction 0.2 --seed 0
    python benchmarks/bench_accuracy.py --dataset 10%=961 --dataset 20%=962 -c 2d --device cpu --tiny-network

(environment: nnUNet_raw / nnUNet_preprocessed / nnUNet_results). Writes raw JSON and Markdown into
``--out`` and prints the tables last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

from nnunetv2_alc.demo.jobs import Job, format_seconds, run_job
from nnunetv2_alc.demo.pipeline import METHOD_NAMES, method_name
from nnunetv2_alc.evaluation import evaluate_folders, format_comparison_table
from nnunetv2_alc.progress import LABEL_DICE_KEYS
from nnunetv2_alc.tiny_plans import shrink_network

TRAINERS = tuple(METHOD_NAMES)  # H-Sup, HL-Sup, Mean Teacher, ALC w/o LS, ALC w/o LR, ALC
ALC = "nnUNetTrainerALC"


def parse_settings(values: list[str]) -> dict[str, str]:
    settings = {}
    for value in values:
        name, sep, dataset = value.partition("=")
        if not sep or not name or not dataset:
            raise SystemExit(f"--dataset takes NAME=ID (e.g. 10%=961), got {value!r}")
        settings[name] = dataset
    return settings


def label_correction_curve(model_folder: Path) -> dict[str, list[float]]:
    checkpoint = torch.load(model_folder / "fold_all" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    return {key.replace("label_dice_", ""): checkpoint["logging"][key] for key in LABEL_DICE_KEYS}


def format_curve(curve: dict[str, list[float]], every: int) -> str:
    epochs = range(0, len(curve["noisy"]), max(1, every))
    lines = ["| epoch | noisy | pseudo | refined |", "|---:|---:|---:|---:|"]
    lines += [f"| {e} | " + " | ".join(f"{curve[k][e]:.4f}" for k in ("noisy", "pseudo", "refined")) + " |" for e in epochs]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", required=True, help="NAME=DATASET_ID, once per HQ setting")
    parser.add_argument("-c", default="3d_fullres", help="nnU-Net configuration")
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny-network", action="store_true", help="shrink the planned network (CPU runs)")
    parser.add_argument("--batch-size", type=int, help="replace the planned batch size (with --tiny-network)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep trained models (checkpoint_final.pth) and complete prediction folders of an earlier run")
    parser.add_argument("--out", default="benchmarks/results/accuracy")
    args = parser.parse_args()
    settings = parse_settings(args.dataset)
    out = Path(args.out)
    logs = out / "logs"
    env = dict(os.environ, ALC_NUM_EPOCHS=str(args.epochs), ALC_ITERATIONS_PER_EPOCH=str(args.iterations),
               ALC_VAL_ITERATIONS_PER_EPOCH=str(max(1, args.iterations // 10)),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if args.device == "cpu":
        env.update(nnUNet_compile="false", nnUNet_def_n_proc="1")
    raw, results_root = Path(os.environ["nnUNet_raw"]), Path(os.environ["nnUNet_results"])
    start = time.monotonic()
    report = {"command": "python " + " ".join(sys.argv), "configuration": args.c, "epochs": args.epochs,
              "iterations_per_epoch": args.iterations, "trainers": args.trainers, "settings": {},
              "device": torch.cuda.get_device_name() if args.device == "cuda" else
              f"CPU ({platform.machine()}, {os.cpu_count()} cores)"}
    for setting, dataset_id in settings.items():
        name = maybe_convert_to_dataset_name(dataset_id)
        dataset_json = json.loads((raw / name / "dataset.json").read_text())
        tags = dataset_json["label_quality"]
        print(f"\n== {setting}: {name} ({sum(v == 'HQ' for v in tags.values())} HQ / {len(tags)} training cases)")
        planning_env = {k: v for k, v in env.items() if k != "nnUNet_n_proc_DA"}
        run_job(Job("plan", ["nnUNetv2_plan_and_preprocess", "-d", dataset_id, "-c", args.c, "-np", "2"],
                    logs / f"{name}_plan.log", planning_env))
        if args.tiny_network:
            shrink_network(Path(os.environ["nnUNet_preprocessed"]) / name / "nnUNetPlans.json", args.c,
                           batch_size=args.batch_size)
        train_env = dict(env, nnUNet_n_proc_DA="0") if args.device == "cpu" else env
        predictions = out / "predictions" / name
        num_test = len(list((raw / name / "labelsTs").iterdir()))
        for t in args.trainers:
            trained = results_root / name / f"{t}__nnUNetPlans__{args.c}" / "fold_all" / "checkpoint_final.pth"
            if not (args.reuse and trained.is_file()):
                run_job(Job(method_name(t), ["nnUNetv2_train", dataset_id, args.c, "all", "-tr", t, "-device", args.device],
                            logs / f"{name}_train_{t}.log", train_env, args.epochs))
            predicted = predictions / t
            if args.reuse and predicted.is_dir() and len(list(predicted.glob("*" + dataset_json["file_ending"]))) == num_test:
                continue
            run_job(Job(method_name(t), ["nnUNetv2_predict", "-i", str(raw / name / "imagesTs"), "-o", str(predictions / t),
                                         "-d", dataset_id, "-c", args.c, "-f", "all", "-tr", t, "-device", args.device,
                                         "-npp", "1", "-nps", "1"], logs / f"{name}_predict_{t}.log", env))
        evaluation = evaluate_folders(str(raw / name / "labelsTs"),
                                      {method_name(t): str(predictions / t) for t in args.trainers},
                                      num_processes=2, output_folder=str(out / "evaluation" / name), show_progress=False)
        entry = {"dataset": name, "hq_cases": sum(v == "HQ" for v in tags.values()), "training_cases": len(tags),
                 "evaluation": evaluation, "table": format_comparison_table(evaluation)}
        if ALC in args.trainers:
            entry["label_correction"] = label_correction_curve(results_root / name / f"{ALC}__nnUNetPlans__{args.c}")
        report["settings"][setting] = entry
    report["seconds"] = time.monotonic() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(report, indent=2, default=str))
    markdown = [f"# Accuracy benchmark ({report['device']}, {args.c}, {args.epochs} epochs x {args.iterations} iterations)",
                "", f"Command: `{report['command']}`", ""]
    for setting, entry in report["settings"].items():
        markdown += [f"## {setting} HQ ({entry['hq_cases']} of {entry['training_cases']} training cases, {entry['dataset']})",
                     "", entry["table"], ""]
        if "label_correction" in entry:
            markdown += ["Label correction (Dice vs clean labels of the LQ patches ALC trained on, per epoch):", "",
                         format_curve(entry["label_correction"], every=max(1, args.epochs // 10)), ""]
    (out / "accuracy.md").write_text("\n".join(markdown))
    print("\n" + "\n".join(markdown))
    print(f"\nDone in {format_seconds(report['seconds'])}; raw results in {out / 'accuracy.json'}")


if __name__ == "__main__":
    main()
