"""Cost of ALC against stock nnU-Net, measured in one process: step time, peak GPU memory, loader throughput.

Every ALC trainer (baselines and ablations at their defaults, ALC at each m of ``--passes``) is compared
with stock ``nnUNetTrainer``, all with the same plans, configuration, batch size and patch size. Training
steps run on fixed random batches (data loading excluded), after warm-up, alternating between trainers round by
round so that drifts in machine load hit all of them alike; the median step time is reported. In the
same rounds, right after its step, each trainer with a teacher runs the teacher's m passes alone: the
stock step plus their median is the floor that the method's arithmetic sets, and the overhead is the
step's time above it. Peak memory is ``torch.cuda.max_memory_allocated`` during the steps (GPU only).
The loader part times batches of nnU-Net's ``nnUNetDataLoader`` and our ``HQLQDataLoader`` on the same
preprocessed cases, with the same transforms, in the main process.

Needs a planned and preprocessed dataset whose dataset.json carries label_quality tags, e.g.::

    nnUNetv2_alc_synthetic -d 960 --kind benchmark
    nnUNetv2_plan_and_preprocess -d 960 -c 3d_fullres
    python benchmarks/bench_cost.py -d 960 -c 3d_fullres --device cuda --passes 4 8

Prints a table last and writes raw JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from nnunetv2.run.run_training import get_trainer_from_args
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

from nnunetv2_alc.batch_composition import HQLQDataLoader, foreground_plan
from nnunetv2_alc.label_quality import split_by_quality
from nnunetv2_alc.trainer_registry import BENCHMARK_TRAINERS

ALC = "nnUNetTrainerALC"  # measured at each m of --passes
STOCK = "nnUNetTrainerStock"  # nnUNetTrainer on the ALC_* schedule; the reference here is nnUNetTrainer itself
VARIANTS = tuple(t for t in BENCHMARK_TRAINERS if t not in (ALC, STOCK))  # baselines and ablations


def make_trainer(dataset: str, configuration: str, trainer_name: str, device: torch.device,
                 plans: str = "nnUNetPlans"):
    trainer = get_trainer_from_args(dataset, configuration, 0, trainer_name, plans, device=device)
    trainer.initialize()
    trainer.network.train()
    return trainer


def random_batch(trainer, keys: list[str], seed: int) -> dict:
    """A batch shaped like the trainer's: data (B, C, *patch), deep-supervision targets, case keys."""
    generator = torch.Generator().manual_seed(seed)
    patch = tuple(trainer.configuration_manager.patch_size)
    data = torch.randn((len(keys), trainer.num_input_channels, *patch), generator=generator)
    labels = torch.randint(0, trainer.label_manager.num_segmentation_heads, (len(keys), 1, *patch),
                           generator=generator).to(torch.int16)
    scales = trainer._get_deep_supervision_scales()
    if scales is None:
        target = labels
    else:
        per_sample = [DownsampleSegForDSTransform(scales)(segmentation=s)["segmentation"] for s in labels]
        target = [torch.stack(level) for level in zip(*per_sample)]
    return {"data": data, "target": target, "keys": keys}


def batch_keys(trainer, label_quality: dict) -> list[str]:
    """Case keys in the trainer's own batch layout (ALC: B_n LQ then B_h HQ; stock: anything)."""
    hq, lq = split_by_quality(sorted(label_quality), label_quality)
    num_lq = getattr(trainer, "local_num_lq", 0)
    return [lq[i % len(lq)] for i in range(num_lq)] + [hq[i % len(hq)] for i in range(trainer.batch_size - num_lq)]


def time_steps(trainers: dict, batches: dict, warmup: int, rounds: int, device: torch.device) -> tuple[dict, dict]:
    """Median seconds per train_step and peak memory, and of the teacher's passes alone, interleaved.

    Round by round, every trainer takes one step, and a trainer with a teacher then runs its passes alone
    (:func:`teacher_seconds`) on the same batch, so that drifts in machine load hit steps and floors alike.
    """
    for name, trainer in trainers.items():
        for _ in range(warmup):
            trainer.train_step(batches[name])
    times = {name: [] for name in trainers}
    teacher_times = {name: [] for name, trainer in trainers.items() if getattr(trainer, "teacher", None) is not None}
    peaks = {}
    for name in trainers:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        trainers[name].train_step(batches[name])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peaks[name] = torch.cuda.max_memory_allocated(device)
    for _ in range(rounds):
        for name, trainer in trainers.items():
            times[name].append(timed(lambda: trainer.train_step(batches[name]), device))
            if name in teacher_times:
                teacher_times[name].append(teacher_seconds(trainer, batches[name], device))
    steps = {name: {"median_s": statistics.median(t), "all_s": t, "peak_bytes": peaks.get(name)}
             for name, t in times.items()}
    teacher = {name: {"teacher_median_s": statistics.median(t), "all_s": t, "passes": trainers[name].alc.num_passes,
                      "lq_samples": trainers[name].local_num_lq} for name, t in teacher_times.items()}
    return steps, teacher


def timed(work, device: torch.device) -> float:
    """Seconds that ``work()`` takes, with the GPU synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def teacher_seconds(trainer, batch: dict, device: torch.device) -> float:
    """Seconds of the teacher's m passes alone (inference mode, training autocast) on the batch's LQ samples.

    These are the ``m x B_n`` gradient-free teacher forwards that ALC's arithmetic adds to a stock step.
    """
    lq = batch["data"][:trainer.local_num_lq].to(device)
    config = trainer.alc

    def passes():
        with trainer._autocast():
            trainer.teacher.stochastic_probabilities(lq, config.num_passes, config.noise_std, config.noise_clip,
                                                     trainer.teacher_chunk, trainer.image_channels)
    return timed(passes, device)


def floor(stock_s: float, teacher_s: float, step_s: float) -> dict:
    """The step time ALC's arithmetic sets (stock step + teacher passes) and the measured step's overhead above it."""
    floor_s = stock_s + teacher_s
    return {"floor_s": floor_s, "overhead": step_s / floor_s - 1}


def loader_throughput(trainer, label_quality: dict, batches: int) -> dict:
    """Batches per second of nnU-Net's training loader and of ours, same cases and transforms."""
    dataset_tr, _ = trainer.get_tr_and_val_datasets()
    keys = list(dataset_tr.identifiers)
    hq, lq = split_by_quality(keys, label_quality)
    setup = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    rotation, dummy_2d, initial_patch, mirror_axes = setup
    transforms = trainer.get_training_transforms(
        trainer.configuration_manager.patch_size, rotation, trainer._get_deep_supervision_scales(),
        mirror_axes, dummy_2d,
        use_mask_for_norm=trainer.configuration_manager.use_mask_for_norm, is_cascaded=False,
        foreground_labels=trainer.label_manager.foreground_labels, regions=None, ignore_label=None)
    common = dict(oversample_foreground_percent=trainer.oversample_foreground_percent, transforms=transforms)
    patch = trainer.configuration_manager.patch_size
    num_lq = trainer.batch_size // 2
    loaders = {
        "nnUNetDataLoader": nnUNetDataLoader(dataset_tr, trainer.batch_size, initial_patch, patch,
                                             trainer.label_manager, **common),
        "HQLQDataLoader": HQLQDataLoader(dataset_tr, trainer.batch_size, initial_patch, patch, trainer.label_manager,
                                         hq, lq, num_lq, foreground_plan(trainer.batch_size - num_lq, num_lq,
                                                                         trainer.oversample_foreground_percent),
                                         **common),
    }
    seconds = {name: [] for name in loaders}
    np.random.seed(0)
    for _ in range(batches):  # interleaved, as for the steps
        for name, loader in loaders.items():
            start = time.perf_counter()
            next(loader)
            seconds[name].append(time.perf_counter() - start)
    return {name: {"batches_per_s": 1 / statistics.median(s), "all_s": s} for name, s in seconds.items()}


def make_trainers(args: argparse.Namespace, others: list[str], passes: list[int]) -> dict:
    """Stock ``nnUNetTrainer``, the ``others`` at their defaults and ALC at each m of ``passes``, by table name.

    Uses the arguments of :func:`add_trainer_arguments`; torch.compile defaults to off on the CPU, on elsewhere.
    """
    device = torch.device(args.device)
    os.environ.setdefault("nnUNet_compile", "false" if device.type == "cpu" else "true")
    trainers = {"nnUNetTrainer": make_trainer(args.d, args.c, "nnUNetTrainer", device, args.p)}
    for name in others:  # the baselines and ablations at their own defaults
        trainers[name] = make_trainer(args.d, args.c, name, device, args.p)
    for m in passes:
        os.environ["ALC_NUM_PASSES"] = str(m)
        trainers[f"{ALC} (m={m})"] = make_trainer(args.d, args.c, ALC, device, args.p)
    return trainers


def fixed_batches(trainers: dict, label_quality: dict) -> dict:
    """One random batch per trainer, in its own HQ/LQ layout, drawn with seed 0."""
    return {name: random_batch(t, batch_keys(t, label_quality), seed=0) for name, t in trainers.items()}


def add_trainer_arguments(parser: argparse.ArgumentParser) -> None:
    """-d, -c, -p and --device: which planned dataset, configuration, plans and device the trainers use."""
    parser.add_argument("-d", required=True, help="dataset id or name (planned and preprocessed, with HQ/LQ tags)")
    parser.add_argument("-c", default="3d_fullres", help="configuration")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier, as for nnUNetv2_train")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_trainer_arguments(parser)
    parser.add_argument("--passes", type=int, nargs="+", default=[4, 8], help="teacher passes m of nnUNetTrainerALC")
    parser.add_argument("--trainers", nargs="*", default=list(VARIANTS),
                        help="other trainers, measured at their default settings (env ALC_* apply)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/cost.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    trainers = make_trainers(args, args.trainers, args.passes)
    label_quality = trainers[f"{ALC} (m={args.passes[0]})"].label_quality
    batches = fixed_batches(trainers, label_quality)
    steps, teacher = time_steps(trainers, batches, args.warmup, args.rounds, device)
    loaders = loader_throughput(trainers["nnUNetTrainer"], label_quality, args.loader_batches)

    stock = steps["nnUNetTrainer"]
    reference = trainers["nnUNetTrainer"]
    floors = {name: floor(stock["median_s"], teacher[name]["teacher_median_s"], steps[name]["median_s"])
              for name in teacher}
    result = {
        "command": "python " + " ".join(os.sys.argv),
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"),
        "torch": torch.__version__,
        "configuration": args.c,
        "plans": args.p,
        "patch_size": list(reference.configuration_manager.patch_size),
        "batch_size": reference.batch_size,
        "network_parameters": sum(p.numel() for p in reference.network.parameters()),
        "steps": steps,
        "teacher_passes": teacher,
        "floors": floors,
        "loaders": loaders,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)

    print(f"\nCost on {result['device']}, {args.p} {args.c}, patch {result['patch_size']}, "
          f"batch {result['batch_size']}, {result['network_parameters'] / 1e6:.2f} M network parameters "
          f"(medians of {args.rounds} interleaved steps)")
    print("Floor: the stock step plus the teacher's m x B_n passes, each timed alone in the same rounds; overhead: the "
          "step's time above that floor.")
    print("| trainer | step [s] | step ratio | teacher passes [s] | floor ratio | overhead above floor "
          "| peak memory [GiB] | memory ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in steps.items():
        memory = f"{s['peak_bytes'] / 2**30:.2f}" if s["peak_bytes"] else "n/a (CPU)"
        memory_ratio = f"{s['peak_bytes'] / stock['peak_bytes']:.2f}x" if s["peak_bytes"] else "n/a"
        passes = f"{teacher[name]['teacher_median_s']:.4f}" if name in teacher else "-"
        floor_ratio = f"{floors[name]['floor_s'] / stock['median_s']:.2f}x" if name in floors else "-"
        overhead = f"{100 * floors[name]['overhead']:+.1f} %" if name in floors else "-"
        print(f"| {name} | {s['median_s']:.4f} | {s['median_s'] / stock['median_s']:.2f}x | {passes} | {floor_ratio} "
              f"| {overhead} | {memory} | {memory_ratio} |")
    base = loaders["nnUNetDataLoader"]["batches_per_s"]
    for name, loader in loaders.items():
        rate = loader["batches_per_s"]
        print(f"| loader {name} | {rate:.2f} batches/s | {rate / base:.2f}x | | | | | |")


if __name__ == "__main__":
    main()
