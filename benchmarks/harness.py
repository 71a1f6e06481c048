"""What the training benchmarks share: one budget, nnU-Net's CLI for planning, training and prediction.

Every model is trained and used exactly as a user would: ``nnUNetv2_plan_and_preprocess``,
``nnUNetv2_train <id> <config> all -tr <trainer>`` and ``nnUNetv2_predict`` as subprocesses, one at a
time (each uses every core), with ALC settings passed as ``ALC_*`` environment variables. Fold ``all``
trains on every training case; the test cases (``imagesTs``/``labelsTs``, clean labels) are predicted
and evaluated instead of nnU-Net's validation of the fold, which is skipped (``ALC_FINAL_VALIDATION=0``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

from nnunetv2_alc.atomic_write import write_text_atomic
from nnunetv2_alc.jobs import Job, planning_env, predict_command, run_job
from nnunetv2_alc.tiny_plans import set_batch_size, shrink_network
from nnunetv2_alc.trainer_registry import display_name

PLAN_STAMP = "alc_bench_plan.json"  # in the preprocessed dataset folder, see Bench.plan
PLANNER_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")  # what nnU-Net's planner makes


@dataclass(frozen=True)
class Budget:
    """The training budget and inference set-up shared by every model of one benchmark run."""

    configuration: str
    epochs: int
    iterations: int
    seed: int
    device: str
    tiny_network: bool
    batch_size: int | None
    tta: bool

    def record(self) -> dict:
        return asdict(self) | {"device_name": device_name(self.device), "torch": torch.__version__,
                               "alc_environment": alc_environment()}


def alc_environment() -> dict[str, str]:
    """The ``ALC_*`` settings of the command's environment (every model of the benchmark trains with them)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("ALC_")}


def add_budget_arguments(parser) -> None:
    """The command-line options of :class:`Budget`, the same in every training benchmark."""
    parser.add_argument("-c", dest="configuration", default="3d_fullres", help="nnU-Net configuration")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=50, help="training iterations per epoch")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every model (ALC_SEED)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny-network", action="store_true", help="shrink the planned network (CPU runs)")
    parser.add_argument("--batch-size", type=int, help="replace the planned batch size")
    parser.add_argument("--disable-tta", action="store_true", help="predict without mirroring (faster, CPU runs)")


def add_resume_arguments(parser, what: str) -> None:
    """``--work`` and ``--max-minutes``: the options of a grid that is run in pieces across sessions."""
    parser.add_argument("--work", help="models and predictions (default: <out>/work, not for git)")
    parser.add_argument("--max-minutes", type=float, default=math.inf, help=f"start no {what} after this long")


def work_folder(args, out: Path) -> Path:
    """The folder of models and predictions that ``--work`` names, ``<out>/work`` by default."""
    return Path(args.work) if args.work else out / "work"


def out_of_time(start: float, max_minutes: float) -> bool:
    """True, and says how to go on, once ``max_minutes`` have passed since ``start`` (``time.monotonic()``)."""
    if (time.monotonic() - start) / 60 <= max_minutes:
        return False
    print(f"--max-minutes {max_minutes} reached: stopping; rerun the same command to go on.", flush=True)
    return True


def budget_from_args(args) -> Budget:
    if args.epochs < 1 or args.iterations < 1:
        raise SystemExit(f"--epochs and --iterations must be >= 1, got {args.epochs} and {args.iterations}")
    return Budget(args.configuration, args.epochs, args.iterations, args.seed, args.device, args.tiny_network,
                  args.batch_size, not args.disable_tta)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def parse_settings(values: list[str]) -> dict[str, str]:
    """``NAME=DATASET_ID`` options (e.g. ``10%=961``) as an ordered mapping."""
    settings = {}
    for value in values:
        name, sep, dataset = value.partition("=")
        if not sep or not name or not dataset:
            raise SystemExit(f"--dataset takes NAME=ID (e.g. 10%=961), got {value!r}")
        settings[name] = dataset
    return settings


def data_identifier(configurations: dict, name: str) -> str:
    """The preprocessed data folder of configuration ``name``: its own, or that of the one it inherits from."""
    configuration = configurations[name]
    if "data_identifier" in configuration or "inherits_from" not in configuration:
        return configuration["data_identifier"]
    return data_identifier(configurations, configuration["inherits_from"])


def require_added_configuration(plans_file: Path, budget: Budget) -> None:
    """A configuration nnU-Net's planner does not make must be in the plans and preprocessed already.

    Such configurations are added to the plans by a script (``la_prepare.py``) or by hand, with their own
    network and batch, so the budget may not shrink them.
    """
    configurations = json.loads(plans_file.read_text()).get("configurations", {}) if plans_file.is_file() else {}
    if budget.configuration not in configurations:
        raise SystemExit(f"{plans_file} has no configuration {budget.configuration!r}: nnU-Net's planner makes only "
                         f"{', '.join(PLANNER_CONFIGURATIONS)}; add it first (benchmarks/la_prepare.py for the LA "
                         "CPU configurations) and preprocess it with nnUNetv2_preprocess -c.")
    if budget.tiny_network or budget.batch_size:
        raise SystemExit(f"--tiny-network and --batch-size apply to planned configurations; {budget.configuration!r}"
                         " was added with its own network and batch size.")
    data = plans_file.parent / data_identifier(configurations, budget.configuration)
    if not data.is_dir() or not any(data.iterdir()):
        raise SystemExit(f"{data} is missing or empty: run nnUNetv2_preprocess -d <id> -c {budget.configuration}.")


class Bench:
    """Runs nnU-Net's commands for one benchmark under a fixed :class:`Budget`, logging into ``out/logs``."""

    def __init__(self, budget: Budget, out: Path, reuse: bool):
        self.budget, self.out, self.reuse = budget, out, reuse
        env = dict(os.environ, ALC_NUM_EPOCHS=str(budget.epochs), ALC_ITERATIONS_PER_EPOCH=str(budget.iterations),
                   ALC_VAL_ITERATIONS_PER_EPOCH=str(max(1, budget.iterations // 10)), ALC_SEED=str(budget.seed),
                   ALC_FINAL_VALIDATION="0",
                   PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
        if budget.device == "cpu":
            env.update(nnUNet_compile="false", nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")
        self.env = env
        missing = [v for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results") if not env.get(v)]
        if missing:
            raise SystemExit(f"Set the environment variable(s) {', '.join(missing)} (nnU-Net's folders) first.")
        self.raw = Path(env["nnUNet_raw"])

    def dataset(self, dataset_id: str) -> tuple[str, dict]:
        """Dataset name and raw dataset.json; refuses datasets without tags or clean test labels."""
        name = maybe_convert_to_dataset_name(dataset_id)
        folder = self.raw / name
        dataset_json = json.loads((folder / "dataset.json").read_text())
        if "label_quality" not in dataset_json:
            raise SystemExit(f"{folder / 'dataset.json'} has no label_quality tags: run nnUNetv2_alc_make_noisy or "
                             "nnUNetv2_alc_tag first.")
        if not (folder / "imagesTs").is_dir() or not (folder / "labelsTs").is_dir():
            raise SystemExit(f"{folder} needs imagesTs/ and labelsTs/ (clean test labels) for the benchmark.")
        return name, dataset_json

    def plan(self, dataset_id: str, name: str) -> None:
        """Plan and preprocess, then shrink the network if asked; skipped when :data:`PLAN_STAMP` still matches.

        The stamp, written after a plan succeeds, records the budget's planning options, the raw files (path,
        size, mtime) and the resulting plans file, so rewritten raw data, another budget or a plan made by hand
        in between all plan again.
        """
        b = self.budget
        folder = Path(self.env["nnUNet_preprocessed"]) / name
        plans, stamp_file = folder / "nnUNetPlans.json", folder / PLAN_STAMP
        if b.configuration not in PLANNER_CONFIGURATIONS:
            require_added_configuration(plans, b)
            return
        if stamp_file.is_file() and json.loads(stamp_file.read_text()) == self._plan_stamp(name, plans):
            print(f"{name}: planned with this budget already ({stamp_file}); not planning again", flush=True)
            return
        stamp_file.unlink(missing_ok=True)
        # On the CPU 2 fingerprint workers too: nnU-Net's default 8 each import torch and nnU-Net first (tiny3d on
        # 2 cores: 81 s of CPU for the whole plan with 8 of them, 29 s with 1)
        fingerprint = ["-npfp", "2"] if b.device == "cpu" else []
        run_job(Job("plan", ["nnUNetv2_plan_and_preprocess", "-d", dataset_id, "-c", b.configuration, "-np", "2",
                             *fingerprint], self.out / "logs" / f"{name}_plan.log", planning_env(self.env)))
        if b.tiny_network:
            shrink_network(plans, b.configuration, batch_size=b.batch_size)
        elif b.batch_size:
            set_batch_size(plans, b.configuration, b.batch_size)
        write_text_atomic(stamp_file, json.dumps(self._plan_stamp(name, plans), indent=2))

    def _plan_stamp(self, name: str, plans: Path) -> dict:
        """What a plan depends on: planning options, the raw dataset's files and the plans file it left."""
        b = self.budget
        raw = self.raw / name
        files = sorted([str(p.relative_to(raw)), p.stat().st_size, p.stat().st_mtime_ns]
                       for p in raw.rglob("*") if p.is_file())
        return {"configuration": b.configuration, "tiny_network": b.tiny_network, "batch_size": b.batch_size,
                "raw_files": hashlib.sha256(json.dumps(files).encode()).hexdigest(),
                "plans": hashlib.sha256(plans.read_bytes()).hexdigest() if plans.is_file() else None}

    def train_and_predict(self, dataset_id: str, name: str, trainer: str, predictions: Path, tag: str = "",
                          settings: dict[str, str] | None = None, results: Path | None = None,
                          images: Path | None = None) -> dict:
        """Train ``trainer`` (fold ``all``) and predict ``images`` (default: the test images) into ``predictions``.

        ``settings`` are extra ALC settings (names as in ALCConfig), ``results`` a separate nnUNet_results
        folder (several models of one trainer). Returns the seconds each step took.
        """
        images = self.raw / name / "imagesTs" if images is None else images
        b = self.budget
        env = dict(self.env, **{f"ALC_{k.upper()}": str(v) for k, v in (settings or {}).items()})
        if results is not None:
            env["nnUNet_results"] = str(results)
        label = display_name(trainer) + (f" [{tag}]" if tag else "")
        logs = self.out / "logs"
        stem = f"{name}_{trainer}{'_' + tag if tag else ''}"
        model = Path(env["nnUNet_results"]) / name / f"{trainer}__nnUNetPlans__{b.configuration}" / "fold_all"
        seconds = {}
        if not (self.reuse and (model / "checkpoint_final.pth").is_file()):
            seconds["train"] = run_job(Job(label, ["nnUNetv2_train", dataset_id, b.configuration, "all", "-tr", trainer,
                                                   "-device", b.device], logs / f"{stem}_train.log", env, b.epochs))
        dataset_json = json.loads((self.raw / name / "dataset.json").read_text())
        num_test = len({p.name.rsplit("_", 1)[0] for p in images.glob("*" + dataset_json["file_ending"])})
        done = predictions.is_dir() and len(list(predictions.glob("*" + dataset_json["file_ending"]))) == num_test
        if not (self.reuse and done):
            command = predict_command(images, predictions, dataset_id, b.configuration, "all", trainer, b.device,
                                      b.tta)
            seconds["predict"] = run_job(Job(label, command, logs / f"{stem}_predict.log", env))
        return {"model": str(model), "seconds": seconds}


def write_report(out: Path, stem: str, report: dict, markdown: list[str]) -> None:
    """Raw JSON and the Markdown tables, written whole (after every dataset, so a stopped run keeps its results)."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"{stem}.json", json.dumps(report, indent=2, default=str))
    write_text_atomic(out / f"{stem}.md", "\n".join(markdown) + "\n")


def logged_curves(checkpoint_file: Path, keys) -> dict[str, list[float]]:
    """Per-epoch values of ``keys`` in a trained model's checkpoint log (empty lists for keys it lacks)."""
    if not checkpoint_file.is_file():
        raise SystemExit(f"{checkpoint_file} does not exist: train the model first.")
    logging = torch.load(checkpoint_file, map_location="cpu", weights_only=False)["logging"]
    return {key: [float(v) for v in logging.get(key, [])] for key in keys}


def tail_means(curves: dict[str, list[float]], tail: int) -> dict[str, float]:
    """Mean of each curve over its last ``tail`` epochs, NaN epochs left out (NaN if all are)."""
    means = {}
    for key, values in curves.items():
        last = np.array(values[-tail:], dtype=float)
        means[key] = float(np.nanmean(last)) if np.isfinite(last).any() else float("nan")
    return means
