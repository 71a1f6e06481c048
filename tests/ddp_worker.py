"""One process of the CPU DDP test (``tests/test_ddp.py``): a few real ``train_step`` calls of ALC trainers.

Run as a script, either as one rank of a gloo process group or alone (no process group: the one-process
reference)::

    python tests/ddp_worker.py --cases cases.json --out DIR [--rank R --world-size W --init-method URL]

``cases.json`` lists the runs, in order, as ``{"name": ..., "trainer": <class name>, "env": {...}}``, plus
optionally ``"validation_steps": N``; a run's ``env`` (its ``ALC_*`` settings) is applied on top of this
process's environment while it runs (a value ``null`` removes the variable: the setting's default). With
``validation_steps`` > 0 the run goes on after its training steps through the rest of nnU-Net's epoch, as
``nnUNetTrainer.run_training`` calls it: ``on_train_epoch_end``, then, under ``torch.no_grad()``,
``on_validation_epoch_start``, N ``validation_step`` calls and ``on_validation_epoch_end`` (see :func:`train`).
Paths (``nnUNet_preprocessed``, ``nnUNet_results``) come from the environment, as with
``nnUNetv2_train``. The trainers are the real classes, constructed as ``nnUNetv2_train`` constructs them;
only the device and the process-group set-up differ (see :func:`cpu_ddp_setup` and :func:`build_trainer`),
because nnU-Net's DDP path assumes one GPU per rank.

Instead of nnU-Net's random, augmenting data loader the worker builds every global batch itself,
deterministically (:func:`global_batch`), so that all ranks and the reference see the same global batch;
a rank trains on its slice of it (:func:`nnunetv2_alc.batch_composition.rank_slice`).

Per run the results go to ``DIR/<name>.rank<R>.pt`` (``torch.save``): per-step losses, the final student,
teacher and selector states, the number of dropout hooks, and for runs with validation the validation keys
and outputs and the logger's values (``trainer.logger.get_checkpoint()``). A failing run writes its
traceback to ``DIR/<name>.rank<R>.err``. Under DDP the process then exits at once with status 1 (the peer
may be stuck in a collective, and the process group cannot be trusted any more); the reference goes on
with the next run.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np
import torch
from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd
from batchgenerators.utilities.file_and_folder_operations import join, load_json
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import nnunetv2.training.nnUNetTrainer.nnUNetTrainer as nnunet_trainer_module
from nnunetv2.paths import nnUNet_preprocessed
from nnunetv2_alc.batch_composition import rank_slice
from nnunetv2_alc.dropout import attached_dropout
from nnunetv2_alc.label_quality import LQ

CONFIGURATION = "3d_fullres"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True, help="JSON file: the runs (see the module docstring)")
    parser.add_argument("--dataset", required=True, help="DatasetXXX_Name under $nnUNet_preprocessed")
    parser.add_argument("--out", required=True, help="folder the results go to")
    parser.add_argument("--steps", type=int, default=3, help="training steps per run")
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world-size", type=int, default=1, help="1: no process group (one-process reference)")
    parser.add_argument("--init-method", default=None, help="process-group rendezvous, e.g. tcp://127.0.0.1:PORT")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a collective waits for the other ranks before it raises")
    return parser.parse_args(argv)


def cpu_ddp_setup(args: argparse.Namespace) -> None:
    """The process group, on the CPU: the only part of nnU-Net's DDP launch (NCCL, one GPU per rank) we replace.

    A gloo group over loopback (the caller passes ``tcp://127.0.0.1:PORT``). nnU-Net wraps the network
    as ``DDP(network, device_ids=[local_rank])``; for a CPU module ``device_ids`` must be None, so the name
    ``DDP`` in nnU-Net's trainer module is replaced by a function that drops ``device_ids`` and otherwise
    builds the real ``DistributedDataParallel`` with nnU-Net's arguments (``find_unused_parameters=False``).
    """
    dist.init_process_group("gloo", init_method=args.init_method, rank=args.rank, world_size=args.world_size,
                            timeout=datetime.timedelta(seconds=args.timeout))

    def cpu_ddp(module, device_ids=None, **kwargs):
        return DistributedDataParallel(module, **kwargs)

    nnunet_trainer_module.DDP = cpu_ddp


def build_trainer(trainer_name: str, dataset_name: str):
    """The trainer as ``nnunetv2/run/run_training.py: get_trainer_from_args`` builds it, then put on the CPU.

    Under DDP ``nnUNetTrainer.__init__`` forces ``device = cuda:<rank>`` and, because of that, creates a
    CUDA GradScaler; both are set to what ``__init__`` makes for ``device=cpu``: the CPU and no scaler.
    """
    module = __import__(f"nnunetv2_alc.trainers.{trainer_name}", fromlist=[trainer_name])
    trainer_class = getattr(module, trainer_name)
    folder = join(nnUNet_preprocessed.require(), dataset_name)
    plans = load_json(join(folder, "nnUNetPlans.json"))
    plans["continue_training"] = False
    dataset_json = load_json(join(folder, "dataset.json"))
    trainer = trainer_class(plans=plans, configuration=CONFIGURATION, fold=0, dataset_json=dataset_json,
                            device=torch.device("cpu"))
    if trainer.is_ddp:
        trainer.device = torch.device("cpu")
        trainer.grad_scaler = None
    return trainer


def global_batch(trainer, step: int) -> dict:
    """The global batch of ``step``: ``global_num_lq`` LQ cases, then ``global_num_hq`` HQ cases.

    Cases cycle through the sorted LQ and HQ case ids, so consecutive steps see different cases. Each
    case is cropped to the plans' patch size around its centre with ``crop_and_pad_nd`` (as nnU-Net's
    data loader crops: image padded with 0, label with -1), then goes through nnU-Net's deterministic
    validation transforms: label -1 to 0, and the deep-supervision targets by nearest downsampling
    (``DownsampleSegForDSTransform`` at ``trainer._get_deep_supervision_scales()``). The samples are
    stacked as nnU-Net's data loader stacks them: ``{"data", "target": [one tensor per scale], "keys"}``.
    """
    dataset = trainer.dataset_class(trainer.preprocessed_dataset_folder)
    identifiers = sorted(dataset.identifiers)
    lq_cases = [k for k in identifiers if trainer.label_quality[k] == LQ]
    hq_cases = [k for k in identifiers if trainer.label_quality[k] != LQ]
    num_lq, num_hq = trainer.global_num_lq, trainer.global_num_hq
    keys = [lq_cases[(step * num_lq + i) % len(lq_cases)] for i in range(num_lq)]
    keys += [hq_cases[(step * num_hq + i) % len(hq_cases)] for i in range(num_hq)]

    patch_size = list(trainer.configuration_manager.patch_size)
    transforms = trainer.get_validation_transforms(trainer._get_deep_supervision_scales())
    images, targets = [], []
    for key in keys:
        data, seg, _, _ = dataset.load_case(key)
        lower = [(size - patch) // 2 for size, patch in zip(data.shape[1:], patch_size)]
        bbox = [[lo, lo + patch] for lo, patch in zip(lower, patch_size)]
        image = torch.from_numpy(crop_and_pad_nd(data, bbox, 0)).float()
        label = torch.from_numpy(crop_and_pad_nd(seg, bbox, -1, cast_cropped_to=np.int16)).to(torch.int16)
        sample = transforms(image=image, segmentation=label)
        images.append(sample["image"])
        targets.append(sample["segmentation"])
    if isinstance(targets[0], list):
        target = [torch.stack(scale) for scale in zip(*targets)]
    else:
        target = torch.stack(targets)
    return {"data": torch.stack(images), "target": target, "keys": keys}


def local_batch(batch: dict, positions: slice) -> dict:
    """This rank's part of a global batch, every deep-supervision scale sliced alike."""
    target = batch["target"]
    target = [t[positions] for t in target] if isinstance(target, list) else target[positions]
    return {"data": batch["data"][positions], "target": target, "keys": batch["keys"][positions]}


def plain_module(module: nn.Module) -> nn.Module:
    """The network inside DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(module, DistributedDataParallel):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), nn.Module):
            module = module._orig_mod
        else:
            return module


def cpu_state(module: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in plain_module(module).state_dict().items()}


def train(trainer_name: str, dataset_name: str, steps: int, validation_steps: int = 0) -> dict:
    """``initialize()``, then epoch 0 of ``nnUNetTrainer.run_training`` on this rank's slices of global batches.

    Always: ``on_epoch_start``, ``on_train_epoch_start`` and ``steps`` calls of ``train_step``. With
    ``validation_steps`` > 0 also ``on_train_epoch_end`` with the ``train_step`` outputs and, under
    ``torch.no_grad()``, ``on_validation_epoch_start``, ``validation_steps`` calls of ``validation_step`` (on
    the global batches of steps ``steps``, ``steps + 1``, ...) and ``on_validation_epoch_end``. Not called:
    ``on_epoch_end`` (checkpoints and progress.png), so ``current_epoch`` stays 0.
    """
    trainer = build_trainer(trainer_name, dataset_name)
    trainer.initialize()  # seeds (ALC_SEED) before the network is built; DDP broadcasts rank 0's weights
    if validation_steps:
        # validation_step counts only HQ samples into nnU-Net's tp_hard/fp_hard/fn_hard when select_on_hq is
        # True; get_dataloaders (called by on_train_start, which the worker skips: it builds the batches
        # itself) sets it to True for a fold with HQ validation cases, on every rank. Set it as it would.
        trainer.select_on_hq = True
    trainer.on_epoch_start()  # as run_training: the epoch's start timestamp
    trainer.on_train_epoch_start()  # network.train() and the epoch-0 learning rate, as nnU-Net's training loop
    initial_student = cpu_state(trainer.network)
    world, rank = (dist.get_world_size(), dist.get_rank()) if trainer.is_ddp else (1, 0)
    positions = rank_slice(trainer.configuration_manager.batch_size, world, rank)
    teacher = getattr(trainer, "teacher", None)
    result = {"trainer": trainer_name, "rank": rank, "world_size": world, "global_num_hq": trainer.global_num_hq,
              "global_num_lq": trainer.global_num_lq, "local_batch_size": trainer.batch_size,
              "initial_student": initial_student, "keys": [], "loss": [], "alc_stats": [],
              "ddp_wrapped": isinstance(trainer.network, DistributedDataParallel),
              "student_dropout_hooks": len(attached_dropout(plain_module(trainer.network))),
              "teacher_dropout_hooks": None if teacher is None else len(attached_dropout(teacher.network))}
    train_outputs = []
    for step in range(steps):
        batch = local_batch(global_batch(trainer, step), positions)
        output = trainer.train_step(batch)
        train_outputs.append(output)
        result["keys"].append(list(batch["keys"]))
        result["loss"].append(float(output["loss"]))
        result["alc_stats"].append(np.asarray(output.get("alc_stats", [])).tolist())
    if validation_steps:
        trainer.on_train_epoch_end(train_outputs)
        val_outputs, result["validation_keys"] = [], []
        with torch.no_grad():  # as run_training
            trainer.on_validation_epoch_start()
            for step in range(steps, steps + validation_steps):
                batch = local_batch(global_batch(trainer, step), positions)
                val_outputs.append(trainer.validation_step(batch))
                result["validation_keys"].append(list(batch["keys"]))
            trainer.on_validation_epoch_end(val_outputs)
        result["validation_outputs"] = val_outputs
        result["logging"] = copy.deepcopy(trainer.logger.get_checkpoint())
        result["current_epoch"] = trainer.current_epoch
    result["student"] = cpu_state(trainer.network)
    result["teacher"] = None if teacher is None else cpu_state(teacher.network)
    result["selector"] = trainer.selector.state_dict()
    return result


def run_case(case: dict, args: argparse.Namespace, base_env: dict) -> None:
    """One run with its own ALC settings; results (or the traceback) go to ``args.out``."""
    os.environ.clear()
    os.environ.update(base_env)
    for key, value in case.get("env", {}).items():
        if value is None:
            os.environ.pop(key, None)  # the setting's default
        else:
            os.environ[key] = value
    stem = Path(args.out) / f"{case['name']}.rank{args.rank}"
    try:
        result = train(case["trainer"], args.dataset, args.steps, case.get("validation_steps", 0))
        if dist.is_initialized():
            dist.barrier()  # every rank finished this run
        torch.save(result, f"{stem}.part")
        os.replace(f"{stem}.part", f"{stem}.pt")
    except BaseException:
        message = f"ddp_worker rank {args.rank}/{args.world_size}, {case['name']} ({case['trainer']}) failed:\n"
        message += traceback.format_exc()
        Path(f"{stem}.err").write_text(message)
        print(message, file=sys.stderr, flush=True)
        if dist.is_initialized():
            os._exit(1)  # no teardown: the peer may wait in a collective that never completes
    finally:
        gc.collect()


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cases = json.loads(Path(args.cases).read_text())
    base_env = dict(os.environ)
    try:
        if args.world_size > 1:
            cpu_ddp_setup(args)
    except BaseException:
        Path(args.out, f"setup.rank{args.rank}.err").write_text(traceback.format_exc())
        traceback.print_exc()
        return 1
    for case in cases:
        run_case(case, args, base_env)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
