"""nnUNetTrainerALC: Adaptive Label Correction (Qian et al. 2025) as an nnU-Net v2 trainer.

Per training step (METHOD.md):
1. the batch holds ``B_n`` LQ then ``B_h`` HQ samples (:mod:`nnunetv2_alc.batch_composition`);
2. the EMA teacher runs ``m`` noisy dropout passes on the LQ samples (Eq. 3-4);
3. the passes are fused into refined labels (Eq. 5-6) and LQ samples are ranked by uncertainty (Eq. 7);
4. ``L_total = L_hs + lambda(t) * (alpha * L_ls + beta * L_n + L_c)`` (Eq. 11) trains the student;
5. the teacher follows the student by EMA.

Variants (H-Sup, HL-Sup, Mean Teacher and the two ablations) change the class attributes below.
Settings come from :class:`nnunetv2_alc.config.ALCConfig` (environment variables ``ALC_*``).
"""

from __future__ import annotations

import os
from typing import List

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from batchgenerators.utilities.file_and_folder_operations import isfile, join, save_json
from torch import autocast
from torch import distributed as dist
from torch._dynamo import OptimizedModule

from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import get_tp_fp_fn_tn
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.paths import nnUNet_raw
from nnunetv2.utilities.helpers import dummy_context

from nnunetv2_alc.batch_composition import HQLQDataLoader, local_composition
from nnunetv2_alc.clean_labels import (build_clean_seg_cache, clean_label_files, dice_from_counts,
                                       label_agreement_counts)
from nnunetv2_alc.config import ALCConfig
from nnunetv2_alc.dropout import add_dropout
from nnunetv2_alc.label_correction import (WindowedSelector, consistency_loss, mean_probabilities, pseudo_labels,
                                           rampup_weight, refine_labels, sample_uncertainty, select_most_certain,
                                           unwrap_model)
from nnunetv2_alc.label_quality import (LQ, LabelQualityError, check_cases_tagged, read_label_quality,
                                        require_both_qualities, split_by_quality, stratified_folds)
from nnunetv2_alc.objective import full_resolution, labels_as_targets, subset, subset_loss
from nnunetv2_alc.progress import ALCLocalLogger, LABEL_DICE_KEYS, LOSS_KEYS
from nnunetv2_alc.run_settings import RunSettings
from nnunetv2_alc.teacher import MeanTeacher

# per-step statistics returned by train_step, in this order
STEP_STATS = LOSS_KEYS + ("num_lq", "num_selected", "uncertainty_sum")


class nnUNetTrainerALC(RunSettings, nnUNetTrainer):
    # what LQ samples learn from: "refined" (Eq. 6), "pseudo" (argmax Psi_avg: ALC w/o LR) or "none" (Mean Teacher)
    lq_targets = "refined"
    # rank LQ samples by uncertainty (Eq. 7); False trains every LQ sample on the corrected label (ALC w/o LS)
    select_lq = True
    # False: LQ cases leave the training split (H-Sup)
    train_on_lq = True
    # True: every case is trained on its own label as if it were HQ (HL-Sup with our architecture and loss)
    tags_as_hq = False

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)  # RunSettings: self.alc, schedule
        if self.label_manager.has_regions or self.label_manager.has_ignore_label:
            raise NotImplementedError(f"{type(self).__name__} supports plain multi-class labels only; this dataset uses "
                                      "regions or an ignore label. Use the stock nnUNetTrainer for it.")
        dataset_json_file = join(self.preprocessed_dataset_folder_base or "<preprocessed folder>", "dataset.json")
        self.label_quality = read_label_quality(dataset_json, dataset_json_file)
        self.logger.local_logger = ALCLocalLogger()
        self.teacher = None  # -> initialize, when the batches hold LQ samples
        self.selector = WindowedSelector(self.alc.selection_window)
        self.alc_iteration = 0
        self.global_num_hq = self.global_num_lq = 0  # -> initialize
        self.local_num_lq = self.lq_offset = 0
        self.monitor_clean_labels = False  # -> get_dataloaders, when labelsTr_clean exists (paper Fig. 3)
        self.print_to_log_file(f"{type(self).__name__} settings (ALCConfig): {self.alc.as_dict()}",
                               also_print_to_console=True)

    # ------------------------------------------------------------------ set-up
    @classmethod
    def build_network_architecture(cls, plans_manager, configuration_manager, num_input_channels: int,
                                   num_output_channels: int, enable_deep_supervision: bool = True):
        """nnU-Net's network from the plans plus parameter-free dropout (METHOD.md, "Teacher passes")."""
        network = get_network_from_plans(configuration_manager.network_arch_class_name,
                                         configuration_manager.network_arch_init_kwargs,
                                         configuration_manager.network_arch_init_kwargs_req_import,
                                         num_input_channels, num_output_channels, allow_init=True,
                                         deep_supervision=enable_deep_supervision)
        config = ALCConfig.from_sources(**cls.config_defaults)
        add_dropout(network, config.dropout_p, config.dropout_placement)
        return network

    def initialize(self):
        super().initialize()  # RunSettings seeds first
        global_batch = self.configuration_manager.batch_size
        if self.train_on_lq and not self.tags_as_hq:
            self.global_num_hq, self.global_num_lq = self.alc.batch_split(global_batch)
        else:
            self.global_num_hq, self.global_num_lq = global_batch, 0
        world, rank = (dist.get_world_size(), dist.get_rank()) if self.is_ddp else (1, 0)
        self.local_num_lq, _ = local_composition(self.global_num_hq, self.global_num_lq, world, rank)
        self.lq_offset = sum(local_composition(self.global_num_hq, self.global_num_lq, world, r)[0] for r in range(rank))
        if self.global_num_lq:
            self.teacher = MeanTeacher(self.network, self.alc.ema_decay)
            if self._do_i_compile():
                self.teacher.compile()
        mode = "per-batch top-k" if self.alc.uses_batch_selection(self.global_num_lq) else "windowed rank"
        self.print_to_log_file(
            f"Batch composition: {self.global_num_lq} LQ + {self.global_num_hq} HQ samples (global batch {global_batch}); "
            f"LQ targets: {self.lq_targets}; selection: {mode if self.select_lq and self.global_num_lq else 'off'}; "
            f"teacher: {'EMA, %d passes' % self.alc.num_passes if self.teacher else 'none'}", also_print_to_console=True)

    def _build_loss(self):
        """nnU-Net's Dice+CE with deep supervision, as l_seg = (CE + Dice) / 2 (Eq. 2).

        The Dice part is computed on each rank's own samples (no DDP all-gather), because the loss is
        applied to HQ/LQ subsets whose sizes differ between ranks.
        """
        loss = super()._build_loss()
        inner = loss.loss if isinstance(loss, DeepSupervisionWrapper) else loss
        inner.weight_ce = inner.weight_dice = 0.5
        getattr(inner.dc, "_orig_mod", inner.dc).ddp = False
        return loss

    # ------------------------------------------------------------------ data
    def do_split(self):
        """nnU-Net's split, except that a new ``splits_final.json`` is stratified by label quality."""
        splits_file = join(self.preprocessed_dataset_folder_base, "splits_final.json")
        if self.fold != "all" and not isfile(splits_file) and self.local_rank == 0:
            identifiers = infer_dataset_class(self.preprocessed_dataset_folder).get_identifiers(self.preprocessed_dataset_folder)
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
        """nnU-Net's loaders; the training one composes every batch of LQ and HQ samples."""
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
        rotation, dummy_2d, initial_patch_size, mirror_axes = self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        label_kwargs = dict(is_cascaded=self.is_cascaded, foreground_labels=self.label_manager.foreground_labels,
                            regions=None, ignore_label=None)
        tr_transforms = self.get_training_transforms(patch_size, rotation, ds_scales, mirror_axes, dummy_2d,
                                                     use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
                                                     **label_kwargs)
        val_transforms = self.get_validation_transforms(ds_scales, **label_kwargs)
        common = dict(oversample_foreground_percent=self.oversample_foreground_percent,
                      probabilistic_oversampling=self.probabilistic_oversampling)
        dl_tr = HQLQDataLoader(dataset_tr, self.batch_size, initial_patch_size, patch_size, self.label_manager,
                               hq_keys, lq_keys, self.local_num_lq, transforms=tr_transforms, **common)
        dl_val = nnUNetDataLoader(dataset_val, self.batch_size, patch_size, patch_size, self.label_manager,
                                  transforms=val_transforms, **common)
        workers = get_allowed_n_proc_DA()
        if workers == 0:
            return SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        pin = self.device.type == "cuda"
        mt_train = NonDetMultiThreadedAugmenter(dl_tr, None, workers, max(6, workers // 2), None, pin, 0.002)
        mt_val = NonDetMultiThreadedAugmenter(dl_val, None, max(1, workers // 2), max(3, workers // 4), None, pin, 0.002)
        next(mt_train), next(mt_val)  # start the workers
        return mt_train, mt_val

    def _clean_label_folder(self, tr_keys) -> str | None:
        """Cache of preprocessed clean labels when the raw dataset has ``labelsTr_clean/``; else None.

        The training loader then carries the clean label as a second target channel (see
        :mod:`nnunetv2_alc.clean_labels`). Skipped silently without clean labels, for cascades (whose
        previous-stage slot this uses) and when no teacher runs.
        """
        if self.is_cascaded or not self.global_num_lq or not nnUNet_raw.is_set():
            return None
        raw_folder = join(nnUNet_raw.get(), self.plans_manager.dataset_name)
        lq_keys = [k for k in tr_keys if self.label_quality[k] == LQ]
        clean_files = clean_label_files(raw_folder, lq_keys, self.dataset_json["file_ending"])
        if not clean_files:
            return None
        folder = join(self.preprocessed_dataset_folder_base, self.configuration_manager.data_identifier + "_clean_seg")
        if self.local_rank == 0:
            build_clean_seg_cache(self, tr_keys, clean_files, folder)
        if self.is_ddp:
            dist.barrier()
        self.monitor_clean_labels = True
        self.print_to_log_file(f"Label-correction monitoring on: clean labels of {len(clean_files)} LQ cases ({folder})")
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
        data, target = self._to_device(batch)
        clean = None
        if self.monitor_clean_labels:  # channel 1 is the clean label, see _clean_label_folder
            clean = full_resolution(target)[:, 1]
            target = [t[:, :1] for t in target] if isinstance(target, list) else target[:, :1]
        is_lq = torch.tensor([self.global_num_lq > 0 and self.label_quality[k] == LQ for k in batch["keys"]])
        lq_index = torch.nonzero(is_lq).flatten().to(self.device)
        hq_index = torch.nonzero(~is_lq).flatten().to(self.device)
        weight = self.consistency_weight()

        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            probs = corrected = None
            if self.teacher is not None and lq_index.numel():
                probs = self.teacher.stochastic_probabilities(data[lq_index], self.alc.num_passes, self.alc.noise_std,
                                                              self.alc.noise_clip, self.alc.teacher_chunk)
                if self.lq_targets != "none":
                    corrected = refine_labels(probs) if self.lq_targets == "refined" else pseudo_labels(probs)
            output = self.network(data)
            terms = self._loss_terms(output, target, hq_index, lq_index, probs, corrected)
            total = terms["L_hs"] + weight * (self.alc.alpha * terms["L_ls"] + self.alc.beta * terms["L_n"] + terms["L_c"])

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
        stats = torch.stack([torch.as_tensor(terms[k], dtype=torch.float32, device=self.device).detach()
                             for k in STEP_STATS]).cpu().numpy()
        result = {"loss": total.detach().cpu().numpy(), "alc_stats": stats}
        if clean is not None and probs is not None:
            result["label_counts"] = self._label_counts(full_resolution(target)[lq_index, 0], clean[lq_index],
                                                        probs, corrected)
        return result

    def _label_counts(self, noisy, clean, probs, corrected) -> np.ndarray:
        """(tp, fp, fn) against the clean label of the noisy, pseudo (argmax Psi_avg) and refined (Eq. 6) labels."""
        pseudo = corrected if self.lq_targets == "pseudo" else pseudo_labels(probs)
        refined = corrected if self.lq_targets == "refined" else refine_labels(probs)
        classes = self.label_manager.num_segmentation_heads
        return torch.stack([label_agreement_counts(labels.long(), clean.long(), classes)
                            for labels in (noisy, pseudo, refined)]).cpu().numpy()

    def _loss_terms(self, output, target, hq_index, lq_index, probs, corrected) -> dict:
        """L_hs (Eq. 1), L_ls (Eq. 8), L_n (Eq. 9), L_c (Eq. 10) and the selection statistics."""
        zero = full_resolution(output).sum() * 0.0
        terms = {"L_hs": subset_loss(self.loss, output, hq_index, subset(target, hq_index)),
                 "L_ls": zero, "L_n": zero, "L_c": zero, "num_lq": lq_index.numel(), "num_selected": 0,
                 "uncertainty_sum": zero.detach()}
        if self.teacher is None:
            return terms
        uncertainty = sample_uncertainty(probs) if probs is not None else torch.zeros(0, device=self.device)
        selected = self._select(uncertainty)  # collective under DDP: every rank calls it
        if probs is None:
            return terms
        terms["uncertainty_sum"] = uncertainty.sum()
        terms["num_selected"] = int(selected.sum())
        student_probs = torch.softmax(full_resolution(output)[lq_index].float(), dim=1)
        terms["L_c"] = consistency_loss(student_probs, mean_probabilities(probs))
        if corrected is None:
            return terms
        chosen, rest = lq_index[selected], lq_index[~selected]
        terms["L_ls"] = subset_loss(self.loss, output, chosen, labels_as_targets(corrected[selected], subset(target, chosen)))
        terms["L_n"] = subset_loss(self.loss, output, rest, subset(target, rest))
        return terms

    def _select(self, uncertainty: torch.Tensor) -> torch.Tensor:
        """Which local LQ samples train on corrected labels (Eq. 7, or METHOD.md's windowed rank)."""
        if not self.select_lq:
            return torch.ones_like(uncertainty, dtype=torch.bool)
        if self.alc.uses_batch_selection(self.global_num_lq):
            everyone = self._gather(uncertainty)
            return select_most_certain(everyone, self.alc.k)[self.lq_offset:self.lq_offset + uncertainty.numel()]
        return self.selector.select(uncertainty, self.alc.k, gather=self._gather if self.is_ddp else None)

    def _gather(self, values: torch.Tensor) -> torch.Tensor:
        """Concatenate a 1-D tensor over DDP ranks in rank order (identity without DDP)."""
        if not self.is_ddp:
            return values
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, values.detach().cpu())
        return torch.cat(parts).to(values.device)

    # ------------------------------------------------------------------ logging
    def on_train_epoch_end(self, train_outputs: List[dict]):
        super().on_train_epoch_end(train_outputs)
        stats = np.stack([o["alc_stats"] for o in train_outputs])  # (iterations, len(STEP_STATS))
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, stats)
            stats = np.concatenate(gathered)
        means = dict(zip(STEP_STATS, stats.mean(0)))
        sums = dict(zip(STEP_STATS, stats.sum(0)))
        for key in LOSS_KEYS:
            self.logger.log(key, float(means[key]), self.current_epoch)
        num_lq = sums["num_lq"]
        self.logger.log("lambda", self.consistency_weight(), self.current_epoch)
        self.logger.log("selected_fraction", float(sums["num_selected"] / num_lq) if num_lq else float("nan"), self.current_epoch)
        self.logger.log("mean_uncertainty", float(sums["uncertainty_sum"] / num_lq) if num_lq else float("nan"), self.current_epoch)
        counts = [o["label_counts"] for o in train_outputs if "label_counts" in o]
        if self.is_ddp:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, counts)
            counts = [c for part in gathered for c in part]
        totals = np.sum(counts, 0) if counts else None  # (3 sources, 3 counts, classes)
        for i, key in enumerate(LABEL_DICE_KEYS):
            self.logger.log(key, dice_from_counts(totals[i]) if totals is not None else float("nan"), self.current_epoch)

    def validation_step(self, batch: dict) -> dict:
        """nnU-Net's online pseudo Dice, also split into HQ and LQ validation samples."""
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
        for suffix, rows in (("hard", slice(None)), ("hq", ~is_lq), ("lq", is_lq)):
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
            with np.errstate(invalid="ignore", divide="ignore"):
                dice = np.nanmean(2 * tp / (2 * tp + fp + fn)) if (tp + fp + fn).sum() else float("nan")
            self.logger.log(f"pseudo_dice_{quality}", float(dice), self.current_epoch)

    def on_epoch_end(self):
        value = lambda key: np.round(self.logger.get_value(key, step=-1), 4)  # noqa: E731
        self.print_to_log_file(
            "ALC: " + ", ".join(f"{k} {value(k)}" for k in LOSS_KEYS)
            + f", lambda {value('lambda')}, LQ selected {value('selected_fraction')}, "
              f"mean LQ uncertainty {value('mean_uncertainty')}")
        self.print_to_log_file(f"Pseudo dice HQ val {value('pseudo_dice_hq')}, LQ val {value('pseudo_dice_lq')}")
        if self.monitor_clean_labels:
            self.print_to_log_file("Dice vs clean labels of trained LQ patches: " + ", ".join(
                f"{key.replace('label_dice_', '')} {value(key)}" for key in LABEL_DICE_KEYS))
        super().on_epoch_end()

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint plus the teacher and the selection state.

        ``checkpoint_final.pth`` gets a sibling ``checkpoint_final_teacher.pth``: the same checkpoint
        with the teacher's weights as ``network_weights``, for ``nnUNetv2_predict -chk``.
        """
        if self.local_rank != 0:
            return
        if self.disable_checkpointing:
            self.print_to_log_file("No checkpoint written, checkpointing is disabled")
            return
        student = self.network.module if self.is_ddp else self.network
        if isinstance(student, OptimizedModule):
            student = student._orig_mod
        checkpoint = {
            "network_weights": student.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": self.logger.get_checkpoint(),
            "_best_ema": self._best_ema,
            "current_epoch": self.current_epoch + 1,
            "init_args": self.my_init_kwargs,
            "trainer_name": self.__class__.__name__,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
            "alc": {"iteration": self.alc_iteration, "selector": self.selector.state_dict(),
                    "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                    "config": self.alc.as_dict()},
        }
        torch.save(checkpoint, filename)
        if self.teacher is not None and os.path.basename(filename) == "checkpoint_final.pth":
            teacher_checkpoint = {k: v for k, v in checkpoint.items() if k != "alc"}
            teacher_checkpoint["network_weights"] = self.teacher.network.state_dict()
            torch.save(teacher_checkpoint, join(os.path.dirname(filename), "checkpoint_final_teacher.pth"))

    def load_checkpoint(self, filename_or_checkpoint) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        checkpoint = filename_or_checkpoint if isinstance(filename_or_checkpoint, dict) else \
            torch.load(filename_or_checkpoint, map_location=self.device, weights_only=False)
        state = checkpoint.get("alc")
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
