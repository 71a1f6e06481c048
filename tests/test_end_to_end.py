"""End to end on the CPU through nnU-Net's own CLI: train -> resume -> validate -> predict, every trainer.

The synthetic tiny 3D dataset, planned and preprocessed for 3d_fullres and 2d, and the ALC model trained
on it (2 epochs of 3 iterations, seed 0) are the session's shared ones (``tiny3d``, shared_runs.py); a test
that resumes, re-validates or trains on what the build did not cache works on a copy. Every trainer
trains a few iterations with a tiny network (features 4..32); the variants and the 2d configuration train
concurrently to fit CI's budget.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from shared_runs import ALC, ITERATIONS, TINY3D as DATASET, TINY3D_ID as DATASET_ID, copy_tree, run, train_cmd

from nnunetv2_alc.jobs import predict_command

pytestmark = pytest.mark.slow

# ALC w/o LR differs from ALC only in its config (test_trainer_classes.py) and trains in test_ddp.py (CI's time)
VARIANTS = ("nnUNetTrainerHSup", "nnUNetTrainerHLSup", "nnUNetTrainerMeanTeacher", "nnUNetTrainerALC_noLS",
            "nnUNetTrainerALC_oracle")


def fold_dir(results: Path, trainer: str, configuration: str = "3d_fullres") -> Path:
    return results / DATASET / f"{trainer}__nnUNetPlans__{configuration}" / "fold_0"


def training_log(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.glob("training_log_*.txt")))


def copied_results(tiny3d, tmp_path: Path) -> tuple[Path, dict]:
    """A results folder holding a copy of the shared ALC model, and the environment that trains into it."""
    results = tmp_path / "results"
    copy_tree(tiny3d.alc_model, results / DATASET / tiny3d.alc_model.name)
    return results, {**tiny3d.training_env, "nnUNet_results": str(results)}


def test_alc_training_writes_loss_terms_teacher_and_stratified_split(tiny3d):
    folder = tiny3d.alc_model / "fold_0"
    log = training_log(folder)
    assert "1 LQ + 1 HQ samples" in log and "selection: windowed rank" in log
    assert log.count("ALC: L_hs") == 2 and "Pseudo dice HQ val" in log
    for name in ("checkpoint_final.pth", "checkpoint_final_teacher.pth", "progress.png", "debug.json"):
        assert (folder / name).is_file(), name
    debug = json.loads((folder / "debug.json").read_text())
    assert "num_passes=8" in debug["alc"] and "k=0.5" in debug["alc"]
    checkpoint = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["alc"]["iteration"] == 2 * ITERATIONS
    assert checkpoint["alc"]["teacher"]["step"] == 2 * ITERATIONS
    for key in ("L_hs", "L_ls", "L_n", "L_c", "lambda", "selected_fraction", "mean_uncertainty",
                "label_dice_noisy", "label_dice_pseudo", "label_dice_refined", "weight_entropy",
                "refined_changed_fraction", "uncertainty_std", "uncertainty_dice_rho", "label_dice_noisy_selected",
                "label_dice_refined_unselected", "selection_oracle_agreement"):
        assert len(checkpoint["logging"][key]) == 2, key
    assert all(0 < v <= 1 for v in checkpoint["logging"]["weight_entropy"])
    assert all(0 <= v <= 1 for v in checkpoint["logging"]["refined_changed_fraction"])
    assert "checkpoint_best is chosen by the EMA pseudo Dice of the" in log and "HQ validation cases only" in log
    logged = checkpoint["logging"]  # nnU-Net's pseudo Dice (which picks checkpoint_best) counts HQ cases only
    assert all(a == b or (math.isnan(a) and math.isnan(b))
               for a, b in zip(logged["mean_fg_dice"], logged["pseudo_dice_hq"], strict=True))
    assert log.count("Refinement: weight entropy") == 2 and "foreground forced within each group" in log
    assert "dropout: lineage p=0.1 at 2 points" in log  # the default (docs/method.md, "Choosing the dropout")
    # the synthetic dataset keeps clean labels, so the label-correction curves (paper Fig. 3) are measured
    assert "Label-correction monitoring on" in log and log.count("Dice vs clean labels") == 2
    assert log.count("Selection check (per-sample Dice vs clean)") == 2
    assert all(0 <= v <= 1 for v in checkpoint["logging"]["label_dice_noisy"])
    manifest = json.loads((tiny3d.raw / "noise_manifest.json").read_text())["cases"]
    assert any(row["dice"] < 1 for row in manifest) and min(checkpoint["logging"]["label_dice_noisy"]) < 1
    teacher = torch.load(folder / "checkpoint_final_teacher.pth", map_location="cpu", weights_only=False)
    assert teacher["alc"]["config"] == checkpoint["alc"]["config"]  # the report runs the training's dropout
    assert set(teacher["network_weights"]) == set(checkpoint["network_weights"])
    assert any(not torch.equal(teacher["network_weights"][k], checkpoint["network_weights"][k])
               for k in teacher["network_weights"])
    splits = json.loads((tiny3d.preprocessed / "splits_final.json").read_text())
    tags = json.loads((tiny3d.raw / "dataset.json").read_text())["label_quality"]
    for split in splits:
        assert {tags[c] for c in split["train"]} == {"HQ", "LQ"}


# Measured with the code before the house refactor (commit d7c6cb9) on this dataset and seed; the refactor
# must not change training. The tolerance covers floating-point differences between CPUs, not a change in
# the method: a change of loss, sampling or dropout moves these by far more after 6 steps. The shared model
# is that training (ALC_SEED=0, ALC_FINAL_VALIDATION=0).
PINNED_SEED0 = {"weights_sum_of_squares": 1894.942389, "train_losses": (0.47197235, 0.421167)}


def test_same_seed_gives_the_pinned_weights(tiny3d):
    folder = tiny3d.alc_model / "fold_0"
    assert "Seeded Python, NumPy and torch with 0" in training_log(folder)
    checkpoint = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    weights = sum(float((v.double() ** 2).sum()) for v in checkpoint["network_weights"].values()
                  if v.is_floating_point())
    assert weights == pytest.approx(PINNED_SEED0["weights_sum_of_squares"], rel=1e-6)
    assert checkpoint["logging"]["train_losses"] == pytest.approx(PINNED_SEED0["train_losses"], rel=1e-5)
    assert (folder / "checkpoint_best_teacher.pth").is_file()  # a teacher beside every checkpoint nnU-Net writes


def test_resume_continues_from_checkpoint(tiny3d, tmp_path):
    results, env = copied_results(tiny3d, tmp_path)
    run(train_cmd(ALC, "3d_fullres", "--c"), {**env, "ALC_NUM_EPOCHS": "3", "ALC_FINAL_VALIDATION": "0"})
    folder = fold_dir(results, ALC)
    checkpoint = torch.load(folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["current_epoch"] == 3
    assert checkpoint["alc"]["iteration"] == 3 * ITERATIONS
    assert checkpoint["alc"]["teacher"]["step"] == 3 * ITERATIONS
    assert len(checkpoint["logging"]["L_hs"]) == 3
    assert "Epoch 2" in training_log(folder)


def test_resume_with_other_method_settings_is_refused(tiny3d, tmp_path):
    results, env = copied_results(tiny3d, tmp_path)
    result = subprocess.run(train_cmd(ALC, "3d_fullres", "--c"), env={**env, "ALC_K": "0.25", "ALC_NUM_EPOCHS": "9"},
                            capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert "other ALC method settings" in message and "k: 0.5 -> 0.25" in message
    assert "num_epochs:" not in message  # the schedule may change
    # validation alone uses none of the method settings
    run(train_cmd(ALC, "3d_fullres", "--val"), {**env, "ALC_K": "0.25"})
    assert (fold_dir(results, ALC) / "validation" / "summary.json").is_file()


# the student in one process (as the demo and the benchmarks predict on the CPU), the teacher with
# nnU-Net's default worker processes for preprocessing and export
@pytest.mark.parametrize("checkpoint, workers", [("checkpoint_final.pth", "0"), ("checkpoint_final_teacher.pth", "1")])
def test_predict_with_student_and_teacher(tiny3d, tmp_path, checkpoint, workers):
    out = tmp_path / f"pred_{checkpoint.split('.')[0]}"
    command = predict_command(tiny3d.raw / "imagesTs", out, str(DATASET_ID), "3d_fullres", "0", ALC, "cpu", tta=False)
    for option in ("-npp", "-nps"):
        command[command.index(option) + 1] = workers
    # prediction does not read ALC settings: a stale, even invalid, variable changes nothing
    run(command + ["-chk", checkpoint], {**tiny3d.env, "ALC_DROPOUT_PLACEMENT": "nowhere", "ALC_K": "7"})
    references = sorted((tiny3d.raw / "labelsTs").glob("*.nii.gz"))
    assert references
    for reference in references:
        predicted = sitk.ReadImage(str(out / reference.name))
        expected = sitk.ReadImage(str(reference))
        assert predicted.GetSize() == expected.GetSize()
        assert set(np.unique(sitk.GetArrayFromImage(predicted))) <= {0, 1}


def test_variants_and_2d_configuration_train(tiny3d, tmp_path):
    results = tmp_path / "results"
    preprocessed = tmp_path / "preprocessed"  # the 2d training caches its clean labels there
    copy_tree(tiny3d.preprocessed, preprocessed / DATASET)
    env = {**tiny3d.training_env, "nnUNet_results": str(results), "nnUNet_preprocessed": str(preprocessed),
           "ALC_NUM_EPOCHS": "1", "ALC_ITERATIONS_PER_EPOCH": "1"}
    # nnU-Net's final validation is the same for every trainer of ours (run_settings.py): the 2d job runs it
    # (the slice-wise predictor), the 3d one runs in test_resume_with_other_method_settings_is_refused (--val)
    jobs = [(trainer, "3d_fullres") for trainer in VARIANTS] + [(ALC, "2d")]
    procs = [subprocess.Popen(train_cmd(t, c), env={**env, "ALC_FINAL_VALIDATION": str(int(c == "2d"))},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace")
             for t, c in jobs]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    for (trainer, configuration), proc, output in zip(jobs, procs, outputs):
        assert proc.returncode == 0, f"{trainer} {configuration}:\n{output[-3000:]}"
        folder = fold_dir(results, trainer, configuration)
        log = training_log(folder)
        assert "ALC: L_hs" in log and (folder / "checkpoint_final.pth").is_file()
        has_teacher = trainer not in ("nnUNetTrainerHSup", "nnUNetTrainerHLSup")
        assert (folder / "checkpoint_final_teacher.pth").is_file() == has_teacher, trainer
    assert (fold_dir(results, ALC, "2d") / "validation" / "summary.json").is_file()
    hsup = training_log(fold_dir(results, "nnUNetTrainerHSup"))
    assert "Training cases:" in hsup and " 0 LQ" in hsup
    mean_teacher = training_log(fold_dir(results, "nnUNetTrainerMeanTeacher"))
    assert "L_ls 0.0, L_n 0.0" in mean_teacher and "EMA, 1 passes" in mean_teacher
    assert "selection: off" in training_log(fold_dir(results, "nnUNetTrainerALC_noLS"))
    oracle = training_log(fold_dir(results, "nnUNetTrainerALC_oracle"))
    assert "LQ targets: nnUNetTrainerALC_oracle.corrected_labels" in oracle and "monitoring on" in oracle


def test_untagged_dataset_fails_before_training_with_the_fix(tiny3d, tmp_path):
    preprocessed = tmp_path / "preprocessed"
    dataset_json = copy_tree(tiny3d.preprocessed, preprocessed / DATASET) / "dataset.json"
    content = json.loads(dataset_json.read_text())
    del content["label_quality"]
    dataset_json.write_text(json.dumps(content))
    _, env = copied_results(tiny3d, tmp_path)  # --c on a trained model whose dataset lost its tags
    env["nnUNet_preprocessed"] = str(preprocessed)
    result = subprocess.run(train_cmd(ALC, "3d_fullres", "--c"), env=env, capture_output=True, encoding="utf-8",
                            errors="replace", timeout=300)
    assert result.returncode != 0
    assert "no 'label_quality' entry" in result.stderr and "nnUNetv2_alc_tag" in result.stderr
