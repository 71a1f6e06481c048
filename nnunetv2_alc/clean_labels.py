"""Clean labels on the training patches, for the label-correction curves (paper Fig. 3).

When the raw dataset keeps the original masks of its LQ cases in ``labelsTr_clean/`` (written by
``nnUNetv2_alc_make_noisy``), each LQ case's clean mask is preprocessed exactly like its noisy one
(nnU-Net's preprocessor: transpose, crop to the image's nonzero box, resample) into a cache folder
next to the preprocessed data. The trainer hands that folder to nnU-Net's dataset as the
"segmentation from a previous stage": the loader then crops, augments and downsamples the clean mask
together with the training label as a second target channel, so both describe the same voxels.
HQ cases (and LQ cases without a clean mask) get their own training label as "clean".
"""

from __future__ import annotations

import os
import shutil

import blosc2
import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import join, load_json, maybe_mkdir_p
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
from tqdm import tqdm

from nnunetv2_alc.raw_dataset import CLEAN_LABELS_TR


def clean_label_files(raw_dataset_folder: str | None, case_ids, file_ending: str) -> dict[str, str]:
    """``case -> clean label file`` for the cases that have one; empty when there is no ``labelsTr_clean``."""
    if not raw_dataset_folder:
        return {}
    folder = join(raw_dataset_folder, CLEAN_LABELS_TR)
    if not os.path.isdir(folder):
        return {}
    found = {case: join(folder, case + file_ending) for case in case_ids}
    return {case: path for case, path in found.items() if os.path.isfile(path)}


def build_clean_seg_cache(trainer, case_ids, clean_files: dict[str, str], cache_folder: str) -> None:
    """Write every case's clean segmentation (no channel axis) that is not cached yet.

    Files have the format the trainer's dataset class reads for previous-stage segmentations
    (``<case>.b2nd`` for blosc2 datasets, ``<case>.npz`` with key ``seg`` otherwise). Runs once per
    configuration; a complete cache is reused. Written into a temporary folder of this process and
    moved into place file by file (``os.replace``), so an interrupted run leaves no half cache behind and
    trainings started at once on one preprocessed dataset (several folds, say) do not collide.
    """
    suffix = ".b2nd" if issubclass(trainer.dataset_class, nnUNetDatasetBlosc2) else ".npz"
    missing = [c for c in case_ids if not os.path.isfile(join(cache_folder, c + suffix))]
    if not missing:
        return
    preprocessor = trainer.configuration_manager.preprocessor_class(verbose=False)
    raw_folder = os.path.dirname(os.path.dirname(next(iter(clean_files.values()))))
    dataset_json = load_json(join(raw_folder, "dataset.json"))
    file_ending = dataset_json["file_ending"]
    num_channels = len(dataset_json.get("channel_names", dataset_json.get("modality", {})))
    dataset = trainer.dataset_class(trainer.preprocessed_dataset_folder, missing)
    temporary = f"{cache_folder}.partial-{os.getpid()}"
    maybe_mkdir_p(temporary)
    for case in tqdm(missing, desc="Preprocessing clean labels for label-correction monitoring",
                     disable=trainer.local_rank != 0):
        if case in clean_files:
            images = [join(raw_folder, "imagesTr", f"{case}_{c:04d}{file_ending}") for c in range(num_channels)]
            _, seg, _ = preprocessor.run_case(images, clean_files[case], trainer.plans_manager,
                                              trainer.configuration_manager, dataset_json)
        else:
            seg = dataset.load_case(case)[1][:]
        _save(join(temporary, case + suffix), np.ascontiguousarray(np.asarray(seg)[0], dtype=np.int16))
    maybe_mkdir_p(cache_folder)
    for name in os.listdir(temporary):
        os.replace(join(temporary, name), join(cache_folder, name))
    shutil.rmtree(temporary)


def _save(path: str, seg: np.ndarray) -> None:
    if path.endswith(".b2nd"):
        blosc2.asarray(seg, urlpath=path, mode="w")
    else:
        np.savez_compressed(path, seg=seg)


def label_agreement_counts(labels: torch.Tensor, clean: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(tp, fp, fn) per foreground class of ``labels`` against ``clean``, summed over samples: shape (3, C-1)."""
    classes = torch.arange(1, num_classes, device=labels.device).view(-1, *([1] * labels.ndim))
    predicted, truth = labels.unsqueeze(0) == classes, clean.unsqueeze(0) == classes
    dims = tuple(range(1, labels.ndim + 1))
    counts = [(predicted & truth).sum(dims), (predicted & ~truth).sum(dims), (~predicted & truth).sum(dims)]
    return torch.stack(counts).float()
