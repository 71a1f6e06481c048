"""Running nnU-Net's command-line steps as subprocesses, one at a time, with a progress line.

Used by the demo (:mod:`nnunetv2_alc.demo`) and the training benchmarks (``benchmarks/harness.py``).

Each job writes its whole output to a log file. The console gets a line when the job ends (with its
elapsed time) and, while it runs, a status line with the current epoch of a training job: rewritten in
place on a terminal, printed every ``HEARTBEAT_S`` seconds otherwise. Jobs run one after the other
because nnU-Net's commands use every CPU core by themselves (``nnUNetv2_train -device cpu`` sets torch
to ``cpu_count()`` threads); concurrent jobs would oversubscribe the cores and run many times slower.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

HEARTBEAT_S = 30.0
POLL_S = 0.5
TAIL_LINES = 40
_EPOCH = re.compile(rb"Epoch (\d+)\s*$", re.MULTILINE)


class StepFailed(RuntimeError):
    """A job exited with an error; the message holds the end of its log."""


@dataclass(frozen=True)
class Job:
    """One command of a step. ``epochs > 0`` marks a training job, whose epoch is shown while it runs."""

    name: str
    command: list[str]
    log: Path
    env: Mapping[str, str]
    epochs: int = 0


def predict_command(images: str | Path, output: str | Path, dataset: str, configuration: str, fold: str,
                    trainer: str, device: str, tta: bool = True) -> list[str]:
    """``nnUNetv2_predict`` for one model. On the CPU it predicts in its own process (``-npp 0 -nps 0``,
    nnU-Net's ``predict_from_files_sequential``): worker processes would each import torch and nnU-Net
    first (5 s or more apiece) and then share the same cores; the predictions are the same."""
    workers = "0" if device == "cpu" else "1"
    return (["nnUNetv2_predict", "-i", str(images), "-o", str(output), "-d", str(dataset), "-c", configuration,
             "-f", str(fold), "-tr", trainer, "-device", device, "-npp", workers, "-nps", workers]
            + ([] if tta else ["--disable_tta"]))


def planning_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for ``nnUNetv2_plan_and_preprocess``: without ``nnUNet_n_proc_DA``, which nnU-Net's planner
    passes to ``torch.set_num_threads``, and that refuses the 0 CPU training uses (no data loader workers)."""
    return {k: v for k, v in env.items() if k != "nnUNet_n_proc_DA"}


def format_seconds(seconds: float) -> str:
    """``42.0 s`` below a minute, else ``m:ss``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def run_job(job: Job) -> float:
    """Run ``job`` to its end and return its elapsed seconds; raise :class:`StepFailed` if it fails.

    On an interrupt (Ctrl-C) the job's process is terminated.
    """
    job.log.parent.mkdir(parents=True, exist_ok=True)
    live = sys.stdout.isatty()
    start = last_status = time.monotonic()
    with open(job.log, "wb") as log:
        process = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, env=dict(job.env))
    try:
        while process.poll() is None:
            time.sleep(POLL_S)
            now = time.monotonic()
            if live or now - last_status >= HEARTBEAT_S:
                _print(f"      {_status(job)}  [{format_seconds(now - start)}]", live, keep=not live)
                last_status = now
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
    elapsed = time.monotonic() - start
    if process.returncode != 0:
        raise StepFailed(f"{job.name} failed (exit status {process.returncode}): {' '.join(job.command)}\n"
                         f"Last lines of {job.log}:\n{_tail(job.log)}")
    _print(f"      {job.name}: done in {format_seconds(elapsed)}", live)
    return elapsed


def _status(job: Job) -> str:
    if not job.epochs:
        return f"{job.name}: running"
    found = _EPOCH.findall(_read_end(job.log))
    return f"{job.name}: epoch {int(found[-1]) + 1 if found else 0}/{job.epochs}"


def _print(text: str, live: bool, keep: bool = True) -> None:
    """One line; on a terminal a status line (``keep=False``) is overwritten by the next output."""
    sys.stdout.write(("\r\033[K" if live else "") + text + ("\n" if keep else ""))
    sys.stdout.flush()


def _read_end(path: Path, size: int = 8192) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - size))
            return handle.read()
    except OSError:
        return b""


def _tail(path: Path) -> str:
    lines = _read_end(path, 64 * 1024).decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])
