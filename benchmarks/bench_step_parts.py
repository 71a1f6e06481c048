"""Where a training step's time goes: the parts of ``train_step`` of stock nnU-Net and of the ALC trainers.

Companion of ``bench_cost.py`` (same trainers, plans and fixed random batches, interleaved rounds): it
wraps the parts of a step with timers and reports, per step, the median time of the student's forward,
the teacher's passes (Eq. 3-4), the loss terms (Eq. 1, 5-10, with the ``l_seg`` calls inside them), the
EMA update (Eq. 3), the per-epoch diagnostics' per-step sums, the optimizer step, and the rest (backward,
gradient clipping, statistics) as the whole step minus those parts. It also times the class argmax of
Eq. 6 both ways (``torch.argmax(dim=1)`` and :func:`nnunetv2_alc.label_correction.class_argmax`) on a
tensor shaped like the teacher's mean probabilities (on the CPU). Timers add a little to each part;
compare parts with each other, and take whole-step ratios from ``bench_cost.py``::

    python benchmarks/bench_step_parts.py -d 971 -c 2d --device cpu --passes 8
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
from collections import defaultdict

import torch

from bench_cost import ALC, add_trainer_arguments, fixed_batches, make_trainers, timed
from nnunetv2_alc.label_correction import class_argmax

PARTS = ("student forward", "teacher passes", "loss terms", "l_seg calls", "EMA update", "diagnostics",
         "optimizer step")


def add_timers(trainer, record: dict) -> None:
    """Wrap the parts of ``trainer.train_step`` so that each call adds its seconds to ``record[part]``.

    On a GPU every timer synchronises before and after its part, which serialises the step a little more
    than training does."""
    targets = [(trainer.network, "forward", "student forward"), (trainer.loss, "forward", "l_seg calls"),
               (trainer.optimizer, "step", "optimizer step"), (trainer, "train_step", "whole step")]
    if hasattr(trainer, "_loss_terms"):
        targets += [(trainer, "_loss_terms", "loss terms"), (trainer, "_diagnostics", "diagnostics")]
    if getattr(trainer, "teacher", None) is not None:
        targets += [(trainer.teacher, "stochastic_probabilities", "teacher passes"),
                    (trainer.teacher, "update", "EMA update")]
    for owner, name, part in targets:
        setattr(owner, name, _timed(getattr(owner, name), record, part, trainer.device))


def _timed(function, record: dict, part: str, device: torch.device):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        result = []
        record[part] += timed(lambda: result.append(function(*args, **kwargs)), device)
        return result[0]
    return wrapper


def step_parts(trainers: dict, batches: dict, warmup: int, rounds: int) -> dict:
    """Per trainer and part, the median over ``rounds`` interleaved steps of the seconds spent in it."""
    records = {name: defaultdict(float) for name in trainers}
    for name, trainer in trainers.items():
        add_timers(trainer, records[name])
        for _ in range(warmup):
            trainer.train_step(batches[name])
    samples = {name: defaultdict(list) for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            records[name].clear()
            trainer.train_step(batches[name])
            parts = dict(records[name])
            nested = parts.get("l_seg calls", 0.0) if "loss terms" in parts else 0.0  # inside the loss terms
            parts["rest (backward, clipping, statistics)"] = parts["whole step"] + nested - sum(
                v for k, v in parts.items() if k != "whole step")
            for part, seconds in parts.items():
                samples[name][part].append(seconds)
    return {name: {part: statistics.median(v) for part, v in parts.items()} for name, parts in samples.items()}


def argmax_seconds(shape: tuple, rounds: int) -> dict:
    """Median seconds of ``torch.argmax(dim=1)`` and of ``class_argmax`` on random probabilities of ``shape``."""
    scores = torch.softmax(torch.randn(shape, generator=torch.Generator().manual_seed(0)), dim=1)
    if not torch.equal(scores.argmax(dim=1), class_argmax(scores)):
        raise AssertionError("class_argmax and torch.argmax disagree")
    result = {}
    for name, function in (("torch.argmax(dim=1)", lambda: scores.argmax(dim=1)),
                           ("class_argmax", lambda: class_argmax(scores))):
        function()
        result[name] = statistics.median(timed(function, scores.device) for _ in range(rounds))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_trainer_arguments(parser)
    parser.add_argument("--passes", type=int, default=8, help="teacher passes m of nnUNetTrainerALC")
    parser.add_argument("--trainers", nargs="*", default=["nnUNetTrainerMeanTeacher"],
                        help="other trainers besides stock nnUNetTrainer and ALC")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/step_parts.json")
    args = parser.parse_args()
    trainers = make_trainers(args, args.trainers, [args.passes])
    alc = trainers[f"{ALC} (m={args.passes})"]
    batches = fixed_batches(trainers, alc.label_quality)
    parts = step_parts(trainers, batches, args.warmup, args.rounds)
    mean_shape = (alc.local_num_lq, alc.label_manager.num_segmentation_heads, *alc.configuration_manager.patch_size)
    argmax = argmax_seconds(mean_shape, args.rounds)
    result = {"command": "python " + " ".join(sys.argv), "torch": torch.__version__, "plans": args.p,
              "configuration": args.c, "patch_size": list(alc.configuration_manager.patch_size),
              "batch_size": alc.batch_size, "lq_samples": alc.local_num_lq,
              "parts_s": parts, "argmax_shape": list(mean_shape), "argmax_s": argmax}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)

    names = list(trainers)
    print(f"\nParts of a training step on {args.device} ({os.cpu_count()} CPU cores), {args.p} {args.c}, "
          f"batch {alc.batch_size} ({alc.local_num_lq} LQ for ALC), median ms per step over {args.rounds} "
          "interleaved rounds")
    print("| part | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for part in ("whole step", *PARTS, "rest (backward, clipping, statistics)"):
        cells = [f"{1000 * parts[n][part]:.1f}" if part in parts[n] else "-" for n in names]
        print(f"| {part} | " + " | ".join(cells) + " |")
    print("(each part's median on its own: the parts of one column need not add up to its whole step)")
    print(f"\nClass argmax on a {tuple(mean_shape)} tensor: " + ", ".join(
        f"{name} {1000 * seconds:.2f} ms" for name, seconds in argmax.items()))


if __name__ == "__main__":
    main()
