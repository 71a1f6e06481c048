"""nnUNetTrainerALC: Adaptive Label Correction (Qian et al. 2025) as an nnU-Net v2 trainer.

Per training step (docs/method.md):
1. the batch holds ``B_n`` LQ then ``B_h`` HQ samples, foreground forced within each group
   (:mod:`nnunetv2_alc.batch_composition`);
2. the EMA teacher runs ``m`` noisy dropout passes on the LQ samples (Eq. 3-4);
3. the passes are fused into corrected labels (Eq. 5-6, :meth:`corrected_labels`) and LQ samples are
   ranked by uncertainty (Eq. 7);
4. ``L_total = L_hs + lambda(t) * (alpha * L_ls + beta * L_n + L_c)`` (Eq. 11) trains the student;
5. the teacher follows the student by EMA.

Variants (H-Sup, HL-Sup, Mean Teacher and the two ablations) override :meth:`corrected_labels` or set
the class flags below. Settings come from :class:`nnunetv2_alc.config.ALCConfig` (``ALC_*`` variables).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import List, Optional

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from batchgenerators.utilities.file_and_folder_operations import isfile, join, save_json
from torch import Tensor, autocast
from torch import distributed as dist

from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import get_tp_fp_fn_tn
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.paths import nnUNet_raw
from nnunetv2.utilities.helpers import dummy_context

from nnunetv2_alc.batch_composition import HQLQDataLoader, composition_warning, foreground_plan, local_composition
from nnunetv2_alc.clean_labels import build_clean_seg_cache, clean_label_files, label_agreement_counts
from nnunetv2_alc.config import ALCConfig, ALCConfigError
from nnunetv2_alc.dice import dice_from_counts, mean_present_dice
from nnunetv2_alc.dropout import add_dropout
from nnunetv2_alc.label_correction import TeacherPasses, WindowedSelector, consistency_loss, select_most_certain
from nnunetv2_alc.label_quality import (LQ, LabelQualityError, check_cases_tagged, read_label_quality,
                                        require_both_qualities, split_by_quality, stratified_folds)
from nnunetv2_alc.objective import (full_resolution, global_share, labels_as_targets, rampup_weight, subset,
                                    subset_loss, zero_term)
from nnunetv2_alc.progress import ALCLocalLogger, DIAGNOSTIC_KEYS, LABEL_DICE_KEYS, LOSS_KEYS
from nnunetv2_alc.refinement_diagnostics import (SELECTION_CHECK_KEYS, changed_voxels, rank_correlation,
                                                 selection_check, spread, weight_entropy_sum)
from nnunetv2_alc.run_settings import RunSettings
from nnunetv2_alc.teacher import MeanTeacher, unwrap_model

# per-step statistics returned by train_step, in this order
STEP_STATS = LOSS_KEYS + ("num_lq", "num_selected", "lq_voxels", "weight_entropy_sum", "refined_changed")
# class flags of the variants; checked when a subclass is defined
FLAGS = ("select_lq", "train_on_lq", "tags_as_hq", "needs_clean_labels")


class nnUNetTrainerALC(RunSettings, nnUNetTrainer):
    display_name = "ALC (ours)"  # in tables, plots and logs
    # rank LQ samples by uncertainty (Eq. 7); False trains every LQ sample on the corrected label (ALC w/o LS)
    select_lq = True
    # False: LQ cases leave the training split (H-Sup)
    train_on_lq = True
    # True: every case is trained on its own label as if it were HQ (HL-Sup with our architecture and loss)
    tags_as_hq = False
    # True: every LQ training case must have its clean label in labelsTr_clean/ (the oracle trains on them)
    needs_clean_labels = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        bad = [f"{name}={getattr(cls, name)!r}" for name in FLAGS if not isinstance(getattr(cls, name), bool)]
        if bad:
            raise TypeError(f"{cls.__name__}: the class flags {', '.join(bad)} must be True or False")

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)  # RunSettings: self.alc, schedule
        if self.label_manager.has_regions or self.label_manager.has_ignore_label:
            raise NotImplementedError(f"{type(self).__name__} supports plain multi-class labels only; this dataset "
                                      "uses regions or an ignore label. Use the stock nnUNetTrainer for it.")
        dataset_json_file = join(self.preprocessed_dataset_folder_base or "<preprocessed folder>", "dataset.json")
        self.label_quality = read_label_quality(dataset_json, dataset_json_file)
        self.logger.local_logger = ALCLocalLogger()
        self.teacher = None  # -> initialize, when the batches hold LQ samples
        self.selector = WindowedSelector(self.alc.selection_window)
        self.alc_iteration = 0
        self.global_num_hq = self.global_num_lq = 0  # -> initialize
        self.local_num_lq = self.lq_offset = 0
        self.select_on_hq = False  # -> get_dataloaders: checkpoint_best from HQ validation cases only
        self.resume_conflicts: list[str] = []  # -> load_checkpoint; refused when training continues
        self.monitor_clean_labels = False  # -> get_dataloaders, when labelsTr_clean exists (paper Fig. 3)
        self.lq_clean_labels: Optional[Tensor] = None  # -> train_step: the clean labels of its LQ samples, if known
        self.print_to_log_file(f"{type(self).__name__} settings (ALCConfig): {self.alc.as_dict()}",
                               also_print_to_console=True)

    def corrected_labels(self, passes: TeacherPasses) -> Optional[Tensor]:
        """What the selected LQ samples learn from: the refined labels Y_ref (Eq. 6).

        Variants override this (ALC w/o LR: ``argmax Psi_avg``); ``None`` leaves the LQ labels unused
        (Mean Teacher: only ``L_c`` reaches the LQ samples).
        """
        return passes.refined

    # ------------------------------------------------------------------ set-up
    def initialize(self):
        super().initialize()  # RunSettings seeds first; nnU-Net builds, compiles and wraps the network
        dropout_points = add_dropout(unwrap_model(self.network), self.alc.dropout_p, self.alc.dropout_placement)
        global_batch = self.configuration_manager.batch_size
        if self.train_on_lq and not self.tags_as_hq:
            self.global_num_hq, self.global_num_lq = self.alc.batch_split(global_batch)
        else:
            self.global_num_hq, self.global_num_lq = global_batch, 0
        world, rank = self._world()
        self.local_num_lq, _ = local_composition(self.global_num_hq, self.global_num_lq, world, rank)
        self.lq_offset = sum(local_composition(self.global_num_hq, self.global_num_lq, world, r)[0]
                             for r in range(rank))
        self.teacher_chunk = self.alc.teacher_chunk or self.batch_size  # this rank's batch
        self.image_channels = self.num_input_channels - (len(self.label_manager.foreground_labels)
                                                         if self.is_cascaded else 0)
        if self.global_num_lq:
            self.teacher = MeanTeacher(self.network, self.alc.ema_decay)
            if self._do_i_compile():
                self.teacher.compile()
        mode = "per-batch top-k" if self.alc.uses_batch_selection(self.global_num_lq) else "windowed rank"
        teacher = (f"EMA, {self.alc.num_passes} passes in chunks of {self.teacher_chunk}" if self.teacher else "none")
        self.print_to_log_file(
            f"Batch composition: {self.global_num_lq} LQ + {self.global_num_hq} HQ samples "
            f"(global batch {global_batch}), "
            f"foreground forced within each group; LQ targets: {self._lq_target_name()}; "
            f"selection: {mode if self.select_lq and self.global_num_lq else 'off'}; teacher: {teacher}; "
            f"dropout: {self.alc.dropout_placement} p={self.alc.dropout_p} at {dropout_points} points (training only)",
            also_print_to_console=True)
        warning = composition_warning(self.global_num_hq, self.global_num_lq, self.configuration_manager.batch_dice,
                                      world)
        if warning:
            self.print_to_log_file(warning, also_print_to_console=True)

    def _lq_target_name(self) -> str:
        return type(self).corrected_labels.__qualname__ if self.global_num_lq else "none (no LQ samples)"

    def _set_batch_size_and_oversample(self):
        self.global_oversample_percent = self.oversample_foreground_percent  # before DDP splits it per rank
        super()._set_batch_size_and_oversample()

    def _world(self) -> tuple[int, int]:
        return (dist.get_world_size(), dist.get_rank()) if self.is_ddp else (1, 0)

    def _build_loss(self):
        """nnU-Net's Dice+CE with deep supervision, ``l_seg = weight_ce * CE + weight_dice * Dice`` (Eq. 2).

        Defaults 1 and 1 keep nnU-Net's own scale. The Dice part is computed on each rank's own samples
        (no DDP all-gather), because the loss is applied to HQ/LQ subsets whose sizes differ between ranks.
        """
        loss = super()._build_loss()
        inner, dice = loss_parts(loss)
        for owner, name in ((inner, "weight_ce"), (inner, "weight_dice"), (dice, "ddp")):
            if not hasattr(owner, name):
                raise RuntimeError(f"nnU-Net's {type(owner).__name__} has no attribute {name!r}: this nnunetv2 version "
                                   "changed its loss, which nnunetv2_alc configures. Install a supported nnunetv2 "
                                   "(see pyproject.toml).")
        inner.weight_ce, inner.weight_dice = self.alc.weight_ce, self.alc.weight_dice
        dice.ddp = False
        return loss

    def on_train_start(self):
        if self.resume_conflicts:
            raise ALCConfigError(
                "Cannot continue training: the checkpoint was trained with other ALC method settings (checkpoint -> "
                "now): " + "; ".join(self.resume_conflicts) + ". Set the ALC_* variables (or ALC_CONFIG) as for that "
                "training (its debug.json lists them), or train anew without --c. The schedule, seed, "
                "final_validation and teacher_chunk may change.")
        super().on_train_start()

    # ------------------------------------------------------------------ data
    def do_split(self):
        """nnU-Net's split, except that a new ``splits_final.json`` is stratified by label quality."""
        splits_file = join(self.preprocessed_dataset_folder_base, "splits_final.json")
        if self.fold != "all" and not isfile(splits_file) and self.local_rank == 0:
            folder = self.preprocessed_dataset_folder
            identifiers = infer_dataset_class(folder).get_identifiers(folder)
            check_cases_tagged(self.label_quality, identifiers, "dataset.json")
            self.print_to_log_file("Creating a 5-fold split stratified by label quality (HQ/LQ)...")
            save_json(stratified_folds(identifiers, self.label_quality), splits_file)
        if self.is_ddp:
            dist.barrier()
        tr_keys, val_keys = super().do_split()
        check_cases_tagged(self.label_quality, list(tr_keys) + list(val_keys), "dataset.json")
        if not self.train_on_lq:
            tr_keys = [k for k in tr_keys if self.label_quality[k] != LQ]
        return tr_keys, val_keys

    def get_dataloaders(self):
        """nnU-Net's loaders, composing every batch of LQ and HQ samples (validation batches too).

        This re-lists ``nnUNetTrainer.get_dataloaders`` (nnU-Net has no hook for the loader class);
        ``tests/test_nnunet_drift.py`` fails when nnU-Net's version of it changes.
        """
        if self.dataset_class is None:
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        tr_keys = list(dataset_tr.identifiers)
        what = f"The training cases of fold {self.fold}"
        if self.global_num_lq:
            hq_keys, lq_keys = require_both_qualities(tr_keys, self.label_quality, what)
        else:
            hq_keys, lq_keys = (list(tr_keys), []) if self.tags_as_hq else split_by_quality(tr_keys, self.label_quality)
            if not hq_keys:
                raise LabelQualityError(f"{what} hold no HQ case; {type(self).__name__} trains on HQ cases only.")
        self.print_to_log_file(f"Training cases: {len(hq_keys)} HQ, {len(lq_keys)} LQ")
        clean_folder = self._clean_label_folder(tr_keys)
        if clean_folder is not None:
            dataset_tr = self.dataset_class(self.preprocessed_dataset_folder, tr_keys,
                                            folder_with_segs_from_previous_stage=clean_folder)

        patch_size = self.configuration_manager.patch_size
        ds_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = \
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        labels = self.label_manager  # regions and ignore labels are refused in __init__
        label_kwargs = dict(is_cascaded=self.is_cascaded, foreground_labels=labels.foreground_labels,
                            regions=labels.foreground_regions if labels.has_regions else None,
                            ignore_label=labels.ignore_label)
        tr_transforms = self.get_training_transforms(patch_size, rotation, ds_scales, mirror_axes, dummy_2d,
                                                     use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
                                                     **label_kwargs)
        val_transforms = self.get_validation_transforms(ds_scales, **label_kwargs)
        dl_tr = self._composed_loader(dataset_tr, initial_patch_size, hq_keys, lq_keys, self.global_num_hq,
                                      self.global_num_lq, tr_transforms)
        dl_val = self._composed_loader(dataset_val, patch_size, *self._validation_composition(dataset_val.identifiers),
                                       val_transforms)
        workers = get_allowed_n_proc_DA()
        if workers == 0:
            return SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        pin = self.device.type == "cuda"
        mt_train = NonDetMultiThreadedAugmenter(dl_tr, None, workers, max(6, workers // 2), None, pin, 0.002)
        mt_val = NonDetMultiThreadedAugmenter(dl_val, None, max(1, workers // 2), max(3, workers // 4), None, pin,
                                              0.002)
        next(mt_train), next(mt_val)  # start the workers
        return mt_train, mt_val

    def _composed_loader(self, dataset, patch_size, hq_keys, lq_keys, num_hq: int, num_lq: int, transforms):
        """This rank's loader for a global layout of ``num_lq`` LQ then ``num_hq`` HQ samples."""
        world, rank = self._world()
        local_lq, local_hq = local_composition(num_hq, num_lq, world, rank)
        plan = foreground_plan(num_hq, num_lq, self.global_oversample_percent, self.probabilistic_oversampling,
                               world, rank)
        return HQLQDataLoader(dataset, local_lq + local_hq, patch_size, self.configuration_manager.patch_size,
                              self.label_manager, hq_keys, lq_keys, local_lq, plan,
                              oversample_foreground_percent=self.global_oversample_percent,
                              probabilistic_oversampling=self.probabilistic_oversampling, transforms=transforms)

    def _validation_composition(self, val_keys) -> tuple[list, list, int, int]:
        """(HQ keys, LQ keys, B_h, B_n) of the validation batches; decides how ``checkpoint_best`` is chosen.

        With HQ validation cases, nnU-Net's EMA pseudo Dice (which picks ``checkpoint_best``) is computed
        on them only, never against noisy labels, and every validation batch holds HQ samples (as many as
        a training batch of ALC; all of them when the fold has no LQ validation case). Trainers without LQ
        training samples (H-Sup, HL-Sup) validate at the default share whatever ``hq_share`` says: the
        share is no setting of theirs, and with ``nnUNet_n_proc_DA=0`` the validation loader draws from the
        training loader's random stream, so it would change their training batches too. Without HQ
        validation cases it falls back to all validation cases, and the log says so.
        """
        hq_keys, lq_keys = split_by_quality(list(val_keys), self.label_quality)
        batch = self.configuration_manager.batch_size
        self.select_on_hq = bool(hq_keys)
        if not hq_keys:
            self.print_to_log_file(f"Fold {self.fold} has no HQ validation case: checkpoint_best is chosen by the "
                                   f"pseudo Dice of all {len(lq_keys)} validation cases, against their (noisy) LQ "
                                   "labels.",
                                   also_print_to_console=True)
            return [], lq_keys, 0, batch
        self.print_to_log_file(f"checkpoint_best is chosen by the EMA pseudo Dice of the {len(hq_keys)} HQ validation "
                               f"cases only ({len(lq_keys)} LQ validation cases are logged apart).",
                               also_print_to_console=True)
        share = self.alc if self.global_num_lq else replace(self.alc, hq_share=ALCConfig.hq_share)
        num_hq, num_lq = share.batch_split(batch) if lq_keys and batch > 1 else (batch, 0)
        return hq_keys, lq_keys, num_hq, num_lq

    def _clean_label_folder(self, tr_keys) -> str | None:
        """Cache of preprocessed clean labels when the raw dataset has ``labelsTr_clean/``; else None.

        The training loader then carries the clean label as a second target channel (see
        :mod:`nnunetv2_alc.clean_labels`). Skipped silently without clean labels, for cascades (whose
        previous-stage slot this uses) and when no teacher runs.
        """
        if self.is_cascaded or not self.global_num_lq:
            return None
        raw_folder = join(nnUNet_raw.get(), self.plans_manager.dataset_name) if nnUNet_raw.is_set() else None
        lq_keys = [k for k in tr_keys if self.label_quality[k] == LQ]
        clean_files = clean_label_files(raw_folder, lq_keys, self.dataset_json["file_ending"])
        missing = sorted(set(lq_keys) - set(clean_files)) if self.needs_clean_labels else []
        if missing:
            raise FileNotFoundError(
                f"{type(self).__name__} trains selected LQ samples on their clean labels, but {len(missing)} LQ "
                f"case(s) have none in {raw_folder or '$nnUNet_raw (not set)'}/labelsTr_clean/ (first: "
                f"{missing[0]}). Make the noisy labels with nnUNetv2_alc_make_noisy, which keeps the clean ones there.")
        if not clean_files:
            return None
        folder = join(self.preprocessed_dataset_folder_base, self.configuration_manager.data_identifier + "_clean_seg")
        if self.local_rank == 0:
            build_clean_seg_cache(self, tr_keys, clean_files, folder)
        if self.is_ddp:
            dist.barrier()
        self.monitor_clean_labels = True
        self.print_to_log_file(f"Label-correction monitoring on: clean labels of {len(clean_files)} LQ cases "
                               f"({folder})")
        return folder

    # ------------------------------------------------------------------ training
    def _autocast(self):
        return autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context()

    def _to_device(self, batch: dict):
        """The batch's data and (deep-supervision) targets on the training device."""
        target = batch["target"]
        target = [t.to(self.device, non_blocking=True) for t in target] if isinstance(target, list) \
            else target.to(self.device, non_blocking=True)
        return batch["data"].to(self.device, non_blocking=True), target

    def consistency_weight(self) -> float:
        """lambda(t) with t = iterations done and T = rampup_fraction of all iterations."""
        total = self.num_epochs * self.num_iterations_per_epoch
        return rampup_weight(self.alc_iteration, self.alc.rampup_length(total), self.alc.lambda_max)

    def train_step(self, batch: dict) -> dict:
        """One step of Eq. 11. The optimizer step below repeats ``nnUNetTrainer.train_step``'s
        (``tests/test_nnunet_drift.py`` fails when nnU-Net's changes)."""
        data, target = self._to_device(batch)
        clean = None
        if self.monitor_clean_labels:  # channel 1 is the clean label, see _clean_label_folder
            clean = full_resolution(target)[:, 1]
            target = [t[:, :1] for t in target] if isinstance(target, list) else target[:, :1]
        is_lq = torch.tensor([self.global_num_lq > 0 and self.label_quality[k] == LQ for k in batch["keys"]])
        lq_index = torch.nonzero(is_lq).flatten().to(self.device)
        hq_index = torch.nonzero(~is_lq).flatten().to(self.device)
        self.lq_clean_labels = clean[lq_index].long() if clean is not None else None
        weight = self.consistency_weight()

        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            passes = None
            if self.teacher is not None and lq_index.numel():
                passes = TeacherPasses(self.teacher.stochastic_probabilities(
                    data[lq_index], self.alc.num_passes, self.alc.noise_std, self.alc.noise_clip, self.teacher_chunk,
                    self.image_channels))
            output = self.network(data)
            terms = self._loss_terms(output, target, hq_index, lq_index, passes)
            total = terms["L_hs"] + weight * (self.alc.alpha * terms["L_ls"] + self.alc.beta * terms["L_n"]
                                              + terms["L_c"])  # Eq. 11

        if self.grad_scaler is not None:
            self.grad_scaler.scale(total).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            total.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.optimizer.step()
        if self.teacher is not None:
            self.teacher.update(self.network)
        self.alc_iteration += 1
        terms.update(self._diagnostics(passes))
        stats = torch.stack([torch.as_tensor(terms[k], dtype=torch.float32, device=self.device).detach()
                             for k in STEP_STATS]).cpu().numpy()
        result = {"loss": total.detach().cpu().numpy(), "alc_stats": stats,
                  "lq_uncertainty": passes.uncertainty.tolist() if passes is not None else [],
                  "lq_refined_dice": [], "lq_noisy_dice": [], "lq_selected": []}
        if clean is not None and passes is not None:
            noisy, clean = full_resolution(target)[lq_index, 0].long(), self.lq_clean_labels
            result["label_counts"] = self._label_counts(noisy, clean, passes)
            result["lq_refined_dice"] = self._sample_dice(passes.refined, clean)
            result["lq_noisy_dice"] = self._sample_dice(noisy, clean)
            result["lq_selected"] = terms["lq_selected"].tolist()
        return result

    def _diagnostics(self, passes: Optional[TeacherPasses]) -> dict:
        """Sums behind the per-epoch diagnostics of Eq. 5-6 (:mod:`nnunetv2_alc.refinement_diagnostics`)."""
        if passes is None:
            return {"lq_voxels": 0, "weight_entropy_sum": 0.0, "refined_changed": 0}
        return {"lq_voxels": passes.pseudo.numel(), "weight_entropy_sum": weight_entropy_sum(passes.weights),
                "refined_changed": changed_voxels(passes.refined, passes.pseudo)}

    def _label_counts(self, noisy: Tensor, clean: Tensor, passes: TeacherPasses) -> np.ndarray:
        """(tp, fp, fn) against the clean label of the noisy, pseudo (argmax Psi_avg) and refined (Eq. 6) labels."""
        classes = self.label_manager.num_segmentation_heads
        return torch.stack([label_agreement_counts(labels, clean, classes)
                            for labels in (noisy, passes.pseudo, passes.refined)]).cpu().numpy()

    def _sample_dice(self, labels: Tensor, clean: Tensor) -> list[float]:
        """Per-sample Dice of ``labels`` to the clean labels (foreground classes, as :func:`dice_from_counts`)."""
        classes = self.label_manager.num_segmentation_heads
        return [dice_from_counts(label_agreement_counts(labels[i], clean[i], classes).cpu().numpy())
                for i in range(labels.shape[0])]

    def _loss_terms(self, output, target, hq_index, lq_index, passes: Optional[TeacherPasses]) -> dict:
        """L_hs (Eq. 1), L_ls (Eq. 8), L_n (Eq. 9), L_c (Eq. 10) and the selection counts.

        Each term is the mean over its samples in the whole global batch: under DDP every rank scales
        its local mean by its share of the term's global samples (:func:`global_share`), and a term
        without local samples is a zero that still reaches every deep-supervision output.
        """
        world, _ = self._world()
        zero = zero_term(output)
        hq_share = global_share(hq_index.numel(), self.global_num_hq, world)
        terms = {"L_hs": hq_share * subset_loss(self.loss, output, hq_index, subset(target, hq_index)),
                 "L_ls": zero, "L_n": zero, "L_c": zero, "num_lq": lq_index.numel(), "num_selected": 0}
        if self.teacher is None:
            return terms
        corrected = self.corrected_labels(passes) if passes is not None else None
        uncertainty = passes.uncertainty if passes is not None else torch.zeros(0, device=self.device)
        selected, num_selected = self._select(uncertainty)  # collective under DDP: every rank calls it
        if passes is None:
            return terms
        terms["num_selected"], terms["lq_selected"] = int(selected.sum()), selected
        student_probs = torch.softmax(full_resolution(output)[lq_index].float(), dim=1)
        lq_share = global_share(lq_index.numel(), self.global_num_lq, world)
        terms["L_c"] = lq_share * consistency_loss(student_probs, passes.mean)
        if corrected is None:
            return terms
        chosen, rest = lq_index[selected], lq_index[~selected]
        terms["L_ls"] = global_share(chosen.numel(), num_selected, world) * subset_loss(
            self.loss, output, chosen, labels_as_targets(corrected[selected], subset(target, chosen)))
        terms["L_n"] = global_share(rest.numel(), self.global_num_lq - num_selected, world) * subset_loss(
            self.loss, output, rest, subset(target, rest))
        return terms

    def _select(self, uncertainty: Tensor) -> tuple[Tensor, int]:
        """Which local LQ samples train on corrected labels (Eq. 7, or the windowed rank), and how many globally.

        Both rules rank every rank's scores (gathered in rank order), so all ranks take the same decision.
        """
        if not self.select_lq:
            return torch.ones_like(uncertainty, dtype=torch.bool), self.global_num_lq
        everyone = self._gather(uncertainty)
        if self.alc.uses_batch_selection(self.global_num_lq):
            chosen = select_most_certain(everyone, self.alc.k)
        else:
            chosen = self.selector.select(everyone, self.alc.k)
        return chosen[self.lq_offset:self.lq_offset + uncertainty.numel()], int(chosen.sum())

    def _gather(self, values: Tensor) -> Tensor:
        """Concatenate a 1-D tensor over DDP ranks in rank order (identity without DDP)."""
        return torch.cat([part.to(values.device) for part in self._all_ranks(values.detach().cpu())])

    def _all_ranks(self, value) -> list:
        """``value`` of every DDP rank, in rank order (``[value]`` without DDP)."""
        if not self.is_ddp:
            return [value]
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, value)
        return parts

    # ------------------------------------------------------------------ logging
    def on_train_epoch_end(self, train_outputs: List[dict]):
        super().on_train_epoch_end(train_outputs)
        stats = np.concatenate(self._all_ranks(np.stack([o["alc_stats"] for o in train_outputs])))
        means = dict(zip(STEP_STATS, stats.mean(0)))
        sums = dict(zip(STEP_STATS, stats.sum(0)))
        for key in LOSS_KEYS:
            self.logger.log(key, float(means[key]), self.current_epoch)
        num_lq, voxels = sums["num_lq"], sums["lq_voxels"]
        self.logger.log("lambda", self.consistency_weight(), self.current_epoch)
        self.logger.log("selected_fraction", float(sums["num_selected"] / num_lq) if num_lq else float("nan"),
                        self.current_epoch)
        uncertainty = np.array([u for part in self._all_ranks([o["lq_uncertainty"] for o in train_outputs])
                                for step in part for u in step])
        refined_dice, noisy_dice, selected = (
            np.array([v for part in self._all_ranks([o[key] for o in train_outputs]) for step in part for v in step])
            for key in ("lq_refined_dice", "lq_noisy_dice", "lq_selected"))
        self.logger.log("mean_uncertainty", float(uncertainty.mean()) if uncertainty.size else float("nan"),
                        self.current_epoch)
        diagnostics = {
            "weight_entropy": sums["weight_entropy_sum"] / voxels if voxels else float("nan"),
            "refined_changed_fraction": sums["refined_changed"] / voxels if voxels else float("nan"),
            "uncertainty_std": spread(uncertainty),
            "uncertainty_dice_rho": rank_correlation(uncertainty, refined_dice) if refined_dice.size else float("nan"),
        }
        diagnostics.update(selection_check(noisy_dice, refined_dice, selected.astype(bool)))
        for key in DIAGNOSTIC_KEYS + SELECTION_CHECK_KEYS:
            self.logger.log(key, float(diagnostics[key]), self.current_epoch)
        counts = [c for part in self._all_ranks([o["label_counts"] for o in train_outputs if "label_counts" in o])
                  for c in part]
        totals = np.sum(counts, 0) if counts else None  # (3 sources, 3 counts, classes)
        for i, key in enumerate(LABEL_DICE_KEYS):
            value = dice_from_counts(totals[i]) if totals is not None else float("nan")
            self.logger.log(key, value, self.current_epoch)

    def validation_step(self, batch: dict) -> dict:
        """nnU-Net's online pseudo Dice, split into HQ and LQ validation samples.

        ``tp_hard``/``fp_hard``/``fn_hard``, from which nnU-Net computes the EMA pseudo Dice that picks
        ``checkpoint_best``, count the HQ samples only when the fold has HQ validation cases.
        """
        data, target = self._to_device(batch)
        with self._autocast():
            output = self.network(data)
            loss = self.loss(output, target)
        logits, labels = full_resolution(output), full_resolution(target)
        one_hot = torch.zeros(logits.shape, device=logits.device, dtype=torch.float16)
        one_hot.scatter_(1, logits.argmax(1, keepdim=True), 1)
        tp, fp, fn, _ = get_tp_fp_fn_tn(one_hot, labels, axes=list(range(2, logits.ndim)))  # (B, C)
        counts = torch.stack([tp, fp, fn])[:, :, 1:].detach().cpu().numpy()  # drop background
        is_lq = np.array([self.label_quality[k] == LQ for k in batch["keys"]])
        result = {"loss": loss.detach().cpu().numpy()}
        for suffix, rows in (("hard", ~is_lq if self.select_on_hq else slice(None)), ("hq", ~is_lq), ("lq", is_lq)):
            for name, values in zip(("tp", "fp", "fn"), counts):
                result[f"{name}_{suffix}"] = values[rows].sum(0)
        return result

    def on_validation_epoch_end(self, val_outputs: List[dict]):
        super().on_validation_epoch_end(val_outputs)
        collated = collate_outputs(val_outputs)
        for quality in ("hq", "lq"):
            tp, fp, fn = (np.sum(collated[f"{n}_{quality}"], 0) for n in ("tp", "fp", "fn"))
            if self.is_ddp:
                parts = [None] * dist.get_world_size()
                dist.all_gather_object(parts, np.stack([tp, fp, fn]))
                tp, fp, fn = np.sum(parts, 0)
            self.logger.log(f"pseudo_dice_{quality}", mean_present_dice(tp, fp, fn), self.current_epoch)

    def on_epoch_end(self):
        value = lambda key: np.round(self.logger.get_value(key, step=-1), 4)  # noqa: E731
        self.print_to_log_file(
            "ALC: " + ", ".join(f"{k} {value(k)}" for k in LOSS_KEYS)
            + f", lambda {value('lambda')}, LQ selected {value('selected_fraction')}, "
              f"mean LQ uncertainty {value('mean_uncertainty')}")
        self.print_to_log_file(f"Pseudo dice HQ val {value('pseudo_dice_hq')}, LQ val {value('pseudo_dice_lq')} "
                               f"(checkpoint_best follows {'HQ' if self.select_on_hq else 'all'} validation cases)")
        self.print_to_log_file(
            f"Refinement: weight entropy / log m {value('weight_entropy')}, refined != pseudo on "
            f"{value('refined_changed_fraction')} of LQ voxels; U spread (std) {value('uncertainty_std')}, "
            f"rank correlation of U with refined-label Dice {value('uncertainty_dice_rho')}")
        if self.monitor_clean_labels:
            self.print_to_log_file("Dice vs clean labels of trained LQ patches: " + ", ".join(
                f"{key.replace('label_dice_', '')} {value(key)}" for key in LABEL_DICE_KEYS))
            self.print_to_log_file(
                f"Selection check (per-sample Dice vs clean): selected noisy {value('label_dice_noisy_selected')} "
                f"refined {value('label_dice_refined_selected')}, unselected noisy "
                f"{value('label_dice_noisy_unselected')} refined {value('label_dice_refined_unselected')}; "
                f"agreement with the oracle (refined beats noisy) {value('selection_oracle_agreement')}")
        if self._best_ema is not None and not np.isfinite(self._best_ema):
            self._best_ema = None  # an undefined first pseudo Dice must not block every later checkpoint_best
        super().on_epoch_end()

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, with the ALC state added under ``alc``, and a teacher checkpoint beside it.

        nnU-Net writes the file; the ALC state (iteration, selector, teacher, settings) is added to every
        checkpoint it writes (``checkpoint_best/latest/final.pth``). Each gets a sibling ``<name>_teacher.pth``:
        the same checkpoint with the teacher's weights as ``network_weights``, for ``nnUNetv2_predict -chk``;
        it keeps the ALC settings (``alc.config``) so the label-quality report can run the training's dropout
        and noise. Both files are replaced whole (no half-written checkpoint).
        """
        super().save_checkpoint(filename)
        if self.local_rank != 0 or self.disable_checkpointing:
            return
        checkpoint = torch.load(filename, map_location="cpu", weights_only=False)
        checkpoint["alc"] = {"iteration": self.alc_iteration, "selector": self.selector.state_dict(),
                             "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                             "config": self.alc.as_dict()}
        _save_whole(checkpoint, filename)
        if self.teacher is not None:
            teacher_checkpoint = dict(checkpoint, network_weights=self.teacher.network.state_dict(),
                                      alc={"config": checkpoint["alc"]["config"]})
            _save_whole(teacher_checkpoint, teacher_checkpoint_name(filename))

    def load_checkpoint(self, checkpoint) -> None:
        """nnU-Net's loading plus the ALC state.

        Method settings that differ from the checkpoint's are remembered and refuse training in
        :meth:`on_train_start` (``--c``); validation alone (``--val``) does not use them. The schedule, seed,
        final validation and teacher chunk (``RUN_SETTINGS``) may differ.
        """
        content = checkpoint if isinstance(checkpoint, dict) else \
            torch.load(checkpoint, map_location=self.device, weights_only=False)
        state = content.get("alc")
        self.resume_conflicts = self.alc.method_differences(state["config"]) if state is not None else []
        super().load_checkpoint(checkpoint)  # positional: nnU-Net renamed this parameter after 2.8
        if state is None:
            self.print_to_log_file("Checkpoint has no ALC state (not written by an ALC trainer): the teacher starts "
                                   "from the loaded student weights.")
            if self.teacher is not None:
                self.teacher.network.load_state_dict(unwrap_model(self.network).state_dict())
            return
        self.alc_iteration = state["iteration"]
        self.selector.load_state_dict(state["selector"])
        if self.teacher is not None and state["teacher"] is not None:
            self.teacher.load_state_dict(state["teacher"])


def loss_parts(loss) -> tuple:
    """(Dice+CE, its Dice module) inside nnU-Net's loss, deep-supervised or not, the Dice possibly compiled."""
    inner = loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
    return inner, getattr(inner.dc, "_orig_mod", inner.dc)


def teacher_checkpoint_name(checkpoint_file: str) -> str:
    """``.../checkpoint_best.pth`` -> ``.../checkpoint_best_teacher.pth``."""
    stem, ending = os.path.splitext(checkpoint_file)
    return f"{stem}_teacher{ending}"


def _save_whole(content: dict, filename: str) -> None:
    """``torch.save`` into a temporary sibling, then rename over ``filename``."""
    temporary = f"{filename}.tmp-{os.getpid()}"
    torch.save(content, temporary)
    os.replace(temporary, filename)
