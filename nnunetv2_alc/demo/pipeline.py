"""``run_demo``: the README's main job on a synthetic dataset, end to end, through nnU-Net's own commands.

Steps: synthetic noisy-label dataset -> ``nnUNetv2_plan_and_preprocess`` (3d_fullres) -> shrink the network
(:func:`nnunetv2_alc.tiny_plans.shrink_network`) -> ``nnUNetv2_train`` every trainer with one short schedule
-> ``nnUNetv2_predict`` the test cases with each -> :func:`nnunetv2_alc.evaluation.evaluate_folders` against
the clean test labels -> the label-quality report on the ALC model (:func:`write_label_report`, in process).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from nnunetv2_alc.demo.workspace import Workspace
from nnunetv2_alc.evaluation import evaluate_folders, format_comparison_table
from nnunetv2_alc.evaluation.background import background_false_positives
from nnunetv2_alc.jobs import Job, format_seconds, predict_command, run_job
from nnunetv2_alc.report import write_label_report
from nnunetv2_alc.report.model import parse_device
from nnunetv2_alc.report.run import REFINED_FOLDER
from nnunetv2_alc.report.sheet import PNG_NAME
from nnunetv2_alc.report.table import CSV_NAME, format_summary
from nnunetv2_alc.synthetic import PRESETS
from nnunetv2_alc.tiny_plans import shrink_network
from nnunetv2_alc.trainer_registry import display_name
from nnunetv2_alc.input_errors import InputDataError

DATASET_ID = 500
CONFIGURATION = "3d_fullres"
FOLD = "0"
REPORT_TRAINER = "nnUNetTrainerALC"
# the paper's baselines beside ALC: H-Sup (HQ only), stock nnU-Net on all labels (HL-Sup), Mean Teacher;
# all follow the same ALC_* schedule and seed (docs/demo_and_report.md)
DEFAULT_TRAINERS = ("nnUNetTrainerHSup", "nnUNetTrainerStock", "nnUNetTrainerMeanTeacher", REPORT_TRAINER)
EMPTY_NOTE = "empty prediction on every test case"
# training and test cases of the demo's tiny3d dataset (the presets' own sizes otherwise)
DEMO_SIZES = {"tiny3d": (20, 10)}


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; the defaults finish in a few minutes on a 2-core CPU (docs/demo_and_report.md)."""

    root: Path
    kind: str = "tiny3d"
    epochs: int = 10
    iterations: int = 30
    trainers: tuple[str, ...] = DEFAULT_TRAINERS
    device: str = "cpu"
    tiny_network: bool = True
    seed: int = 0
    overwrite: bool = False

    @property
    def val_iterations(self) -> int:
        return max(1, self.iterations // 10)

    @property
    def sizes(self) -> tuple[int, int]:
        preset = PRESETS[self.kind]
        return DEMO_SIZES.get(self.kind, (preset.num_train, preset.num_test))

    @property
    def dataset_name(self) -> str:
        return f"Dataset{DATASET_ID:03d}_{PRESETS[self.kind].dataset_name}"


def check_settings(settings: DemoSettings) -> None:
    """Reject settings the demo cannot run, before anything is written."""
    kinds_3d = [kind for kind, preset in PRESETS.items() if preset.shape[0] > 1]
    problems = [
        (settings.kind not in kinds_3d, f"--kind must be a 3D preset ({', '.join(kinds_3d)}), got {settings.kind}"),
        (settings.epochs < 1 or settings.iterations < 1, "--epochs and --iterations must be >= 1"),
        (REPORT_TRAINER not in settings.trainers, f"--trainers must include {REPORT_TRAINER} (the report needs it)"),
        (len(set(settings.trainers)) != len(settings.trainers), "--trainers lists a trainer twice"),
    ]
    for failed, message in problems:
        if failed:
            raise InputDataError(message)
    parse_device(settings.device)


def run_demo(settings: DemoSettings, out: Callable[[str], None] = partial(print, flush=True)) -> dict[str, Path]:
    """Run every step, reporting progress through ``out``; return the paths of what it wrote (also printed)."""
    check_settings(settings)
    work = Workspace(settings.root.resolve())
    work.prepare(settings.overwrite)
    cpu = settings.device == "cpu"
    cores = os.cpu_count() or 1
    env = work.environment(cpu)
    num_train, num_test = settings.sizes
    dataset = work.raw / settings.dataset_name
    start = time.monotonic()
    steps = iter(range(1, 8))

    def step(title: str) -> None:
        out(f"[{next(steps)}/7] {format_seconds(time.monotonic() - start):>6}  {title}")

    out(f"ALC demo in {work.root}: {settings.kind} ({num_train} training / {num_test} test cases), "
        f"{len(settings.trainers)} trainers x {settings.epochs} epochs x {settings.iterations} iterations, "
        f"{settings.device}")
    step("synthetic dataset with noisy LQ labels (nnUNetv2_alc_synthetic)")
    run_job(Job("dataset", ["nnUNetv2_alc_synthetic", "-d", str(DATASET_ID), "--kind", settings.kind,
                            "--num-train", str(num_train), "--num-test", str(num_test), "--seed", str(settings.seed)],
                work.logs / "synthetic.log", env))
    step(f"plan and preprocess {CONFIGURATION} (nnUNetv2_plan_and_preprocess)")
    planning = str(max(1, cores // 2))
    run_job(Job("planning", ["nnUNetv2_plan_and_preprocess", "-d", str(DATASET_ID), "-c", CONFIGURATION,
                             "-np", planning, "-npfp", planning], work.logs / "plan_and_preprocess.log", env))
    plans = work.preprocessed / settings.dataset_name / "nnUNetPlans.json"
    if settings.tiny_network:
        step(f"shrink the network: features per stage {shrink_network(plans, CONFIGURATION)}")
    else:
        step("keep the planned network")

    step(f"train {', '.join(display_name(t) for t in settings.trainers)} (nnUNetv2_train)")
    # no final validation of fold 0 unless ALC_FINAL_VALIDATION says so: the demo evaluates on the test cases
    train_env = {"ALC_FINAL_VALIDATION": "0", **env, "ALC_NUM_EPOCHS": str(settings.epochs),
                 "ALC_ITERATIONS_PER_EPOCH": str(settings.iterations),
                 "ALC_VAL_ITERATIONS_PER_EPOCH": str(settings.val_iterations), "ALC_SEED": str(settings.seed)}
    if cpu:
        train_env["nnUNet_n_proc_DA"] = "0"  # data augmentation in the training process: no idle workers
    for trainer in settings.trainers:
        run_job(Job(display_name(trainer), ["nnUNetv2_train", str(DATASET_ID), CONFIGURATION, FOLD, "-tr", trainer,
                                           "-device", settings.device],
                    work.logs / f"train_{trainer}.log", train_env, settings.epochs))

    step("predict the test cases with every model (nnUNetv2_predict)")
    for trainer in settings.trainers:
        command = predict_command(dataset / "imagesTs", work.predictions / trainer, str(DATASET_ID), CONFIGURATION,
                                  FOLD, trainer, settings.device)
        run_job(Job(display_name(trainer), command, work.logs / f"predict_{trainer}.log", env))

    step("evaluate against the clean test labels (Dice, Jaccard, 95HD, ASD)")
    folders = {display_name(t): str(work.predictions / t) for t in settings.trainers}
    results = evaluate_folders(str(dataset / "labelsTs"), folders, num_processes=1, output_folder=str(work.evaluation),
                               show_progress=False)
    background = background_false_positives(str(dataset / "labelsTs"), folders)
    empty = {name: EMPTY_NOTE for name, b in background.items() if b["marked"] == 0 and b["volume_ratio"] == 0}
    table = format_comparison_table(results, flagged=empty)
    (work.evaluation / "comparison.md").write_text(table)  # the table as printed, empty models flagged
    out("\n" + table)

    step("label-quality report of the LQ training cases (nnunetv2_alc.report, as nnUNetv2_alc_report)")
    models = {t: work.results / settings.dataset_name / f"{t}__nnUNetPlans__{CONFIGURATION}" for t in settings.trainers}
    ranked = write_label_report(models[REPORT_TRAINER], dataset, work.report, device=parse_device(settings.device))
    out(format_summary(ranked, shown=5))

    outputs = {
        "table": work.evaluation / "comparison.md",
        "predictions": work.predictions,
        "report": work.report / CSV_NAME,
        "worst cases": work.report / PNG_NAME,
        "refined labels": work.report / REFINED_FOLDER,
        **{f"progress {display_name(t)}": folder / f"fold_{FOLD}" / "progress.png" for t, folder in models.items()},
        "logs": work.logs,
    }
    out(f"\nDone in {format_seconds(time.monotonic() - start)}. Outputs:")
    width = max(len(name) for name in outputs) + 2
    for name, path in outputs.items():
        out(f"  {name + ':':<{width}} {path}")
    return outputs
