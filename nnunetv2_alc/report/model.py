"""Loading one fold of a trained model folder for the label-quality report."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.raw_dataset import RawDataset
from nnunetv2_alc.input_errors import InputDataError

TEACHER_CHECKPOINT = "checkpoint_final_teacher.pth"
STUDENT_CHECKPOINT = "checkpoint_final.pth"
PASS_SETTINGS = ("num_passes", "noise_std", "noise_clip", "dropout_p", "dropout_placement")
MODEL_FILES = ("plans.json", "dataset.json")


def parse_fold(text: str) -> int | str:
    """nnU-Net's fold argument: a number, or ``all``."""
    if text == "all":
        return text
    if not text.isdigit():
        raise InputDataError(f"fold must be a number or 'all', got {text!r}")
    return int(text)


def parse_device(name: str | None) -> torch.device:
    """``cpu`` or ``cuda`` (which must be available); ``None``: ``cuda`` if available, else ``cpu``."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputDataError("-device cuda was requested but torch sees no CUDA device; use -device cpu")
    return torch.device(name)


def checkpoint_path(model_folder: str | Path, fold: int | str, checkpoint: str) -> Path:
    """The checkpoint file of one fold, with an error naming what is missing and what exists instead."""
    folder = Path(model_folder)
    if not folder.is_dir():
        raise InputDataError(f"model folder {folder} does not exist")
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise InputDataError(f"{folder} is not a trained nnU-Net model folder (<trainer>__<plans>__<configuration>): "
                             f"it lacks {', '.join(missing)}")
    fold_folder = folder / f"fold_{fold}"
    if not fold_folder.is_dir():
        folds = sorted(p.name for p in folder.glob("fold_*")) or ["none"]
        raise InputDataError(f"{fold_folder} does not exist (folds there: {', '.join(folds)}); choose one with -f")
    path = fold_folder / checkpoint
    if not path.is_file():
        found = sorted(p.name for p in fold_folder.glob("*.pth")) or ["none"]
        hint = (f" {TEACHER_CHECKPOINT} is written at the end of training (beside every checkpoint) by the "
                "trainers with a teacher (nnUNetTrainerALC and its variants); -chk checkpoint_final.pth uses the "
                "student instead."
                if checkpoint == TEACHER_CHECKPOINT else "")
        raise InputDataError(f"checkpoint {path} does not exist (checkpoints there: {', '.join(found)}).{hint}")
    return path


def load_predictor(model_folder: str | Path, fold: int | str, checkpoint: str, device: torch.device) -> nnUNetPredictor:
    """nnU-Net's predictor for one fold and checkpoint: sliding window with Gaussian weighting, no mirroring.

    Test-time mirroring is off because each stochastic pass is one forward, as in training (Eq. 3).
    The network is built by the trainer named in the checkpoint, as for ``nnUNetv2_predict``; the report
    attaches the training's dropout afterwards (:func:`nnunetv2_alc.report.passes.make_stochastic`).
    """
    checkpoint_path(model_folder, fold, checkpoint)
    with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net's notes on the device and the trainer search
        predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                    perform_everything_on_device=device.type == "cuda", device=device,
                                    allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(model_folder), (fold,), checkpoint)
    if predictor.configuration_manager.previous_stage_name is not None:
        raise InputDataError(f"{model_folder} is a cascade stage; the report supports single-stage configurations")
    if predictor.label_manager.has_regions:
        raise InputDataError(f"{model_folder} was trained with regions; the report needs plain multi-class labels")
    return predictor


def settings_files(checkpoint: str) -> list[str]:
    """The checkpoint files :func:`saved_pass_settings` reads, in order."""
    return list(dict.fromkeys((checkpoint, STUDENT_CHECKPOINT)))


def saved_pass_settings(model_folder: str | Path, fold: int | str, checkpoint: str) -> ALCConfig | None:
    """The training's m, input noise and dropout (``PASS_SETTINGS``) from ``checkpoint["alc"]["config"]``.

    Read from ``checkpoint``, else from ``checkpoint_final.pth`` of the same fold; ``None`` if neither holds
    them (a stock nnU-Net checkpoint). Settings missing from the saved ones keep ALCConfig's defaults.
    """
    fold_folder = checkpoint_path(model_folder, fold, checkpoint).parent
    for name in settings_files(checkpoint):
        path = fold_folder / name
        saved = torch.load(path, map_location="cpu", weights_only=False).get("alc") if path.is_file() else None
        if isinstance(saved, dict) and "config" in saved:
            return ALCConfig(**{key: saved["config"][key] for key in PASS_SETTINGS if key in saved["config"]})
    return None


def check_dataset_matches(predictor: nnUNetPredictor, raw: RawDataset) -> None:
    """The raw dataset must have the labels and image channels the model was trained with."""
    trained, given = predictor.dataset_json, raw.dataset_json
    for key in ("labels", "channel_names"):
        if trained.get(key) != given.get(key):
            raise InputDataError(f"{raw.dataset_json_path} has {key} {given.get(key)} but the model was trained with "
                                 f"{trained.get(key)}; pass the dataset the model was trained on")
