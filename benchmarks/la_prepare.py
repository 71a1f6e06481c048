"""Prepare the Left Atrium benchmark: datasets, noisy labels and the CPU-budget configurations.

From the LA data folder (UA-MT HDF5 layout, see docs/noise_and_conversion.md) this makes, each step
skipped when its result is there already:

1. the test dataset ``--test-id``: ``nnUNetv2_alc_convert_LA`` (its seeded split, or the data folder's
   ``train.list`` / ``test.list`` when it has them: training cases and the test cases that no model and no
   choice may see), ``--hq-fraction`` of the training cases tagged HQ;
2. the development dataset ``--dev-id`` from the test dataset's *training cases only*: a quarter of them
   become its ``imagesTs`` (the validation cases of ``bench_la_diagnostics.py``), with as many HQ cases
   as the test dataset has; with ``--mild-id`` a twin with the same split and tags and milder noise;
   with ``--hq20-id`` the test dataset again with twice the HQ fraction, with ``--ceiling-id`` its clean
   twin (every training label clean and HQ: the ceiling of ``bench_evidence.py --ceiling-id``);
3. noisy LQ labels: ``nnUNetv2_alc_make_noisy`` (the paper's radius 3-15, ``--mild-radius`` for the twin);
4. nnU-Net's plans (``nnUNetv2_plan_and_preprocess --no_pp``), then :data:`CPU_CONFIGURATIONS` added to
   them (:func:`nnunetv2_alc.tiny_plans.add_configuration`) and preprocessed (``nnUNetv2_preprocess``).

The CPU configurations are nnU-Net's own ``2d`` and ``3d_fullres`` at a coarser spacing with a smaller
network and patch, so that a training takes minutes on 2 cores (whether the curves are flat by the end
is what the budget rows of ``bench_la_diagnostics.py`` measure). Each has a twin ``<name>_b2`` with
nnU-Net's planned batch size for LA (2) on the same preprocessed data.

    python benchmarks/la_prepare.py --data PATH/TO/LeftAtrium --test-id 600 --dev-id 601 --mild-id 602 \\
        --hq20-id 603 --ceiling-id 604

(environment: nnUNet_raw / nnUNet_preprocessed set; nothing is written into the data folder.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from bench_evidence import clean_twin

from nnunetv2_alc.atomic_write import write_text_atomic
from nnunetv2_alc.jobs import Job, planning_env, run_job
from nnunetv2_alc.tiny_plans import add_configuration

PLANNED_BATCH = 2  # nnU-Net's planned 3d_fullres batch for LA; the *_b2 twins use it
# name -> (base configuration, spacing in mm, patch size, stages, features of the first and of the last stages, batch)
CPU_CONFIGURATIONS = {
    "2d_cpu": ("2d", [1.5], [64, 80], 4, (8, 64), 12),
    "3d_cpu": ("3d_fullres", [2.5], [24, 32, 40], 4, (8, 64), 4),
}


def dataset_folder(raw: Path, dataset_id: int) -> Path | None:
    found = sorted(raw.glob(f"Dataset{dataset_id:03d}_*"))
    return found[0] if found else None


def convert(raw: Path, source: Path, dataset_id: int, hq: list[str], extra: list[str], logs: Path) -> Path:
    folder = dataset_folder(raw, dataset_id)
    if folder is None or not (folder / "dataset.json").is_file():
        run_job(Job(f"convert {dataset_id}", ["nnUNetv2_alc_convert_LA", "-i", str(source), "-d", str(dataset_id),
                                              *hq, *extra], logs / f"convert_{dataset_id}.log", dict(os.environ)))
        folder = dataset_folder(raw, dataset_id)
    return folder


def make_noisy(folder: Path, radius: tuple[int, int], logs: Path) -> None:
    manifest = folder / "noise_manifest.json"
    if not manifest.is_file():
        run_job(Job(f"noise {folder.name}", ["nnUNetv2_alc_make_noisy", "-d", str(folder), "--radius",
                                             *map(str, radius)], logs / f"noise_{folder.name}.log", dict(os.environ)))
    made = json.loads(manifest.read_text())["radius"]
    if list(made) != list(radius):
        raise SystemExit(f"{folder} has noisy labels of radius {made[0]}..{made[1]}, not {radius[0]}..{radius[1]}: "
                         "remove that dataset (raw and preprocessed) to make it again, or give its radius.")


def development_input(test_folder: Path, data: Path, work: Path) -> Path:
    """A folder in the converter's layout that links the test dataset's training cases only."""
    train = json.loads((test_folder / "split.json").read_text())["train"]
    cases = data / "2018LA_Seg_Training Set"
    target = work / "development_input" / "2018LA_Seg_Training Set"
    target.mkdir(parents=True, exist_ok=True)
    for case in train:
        link = target / case
        if not link.is_symlink():
            link.symlink_to((cases / case).resolve(), target_is_directory=True)
    unknown = {p.name for p in target.iterdir()} - set(train)
    if unknown:
        raise SystemExit(f"{target} links cases that are not training cases of {test_folder.name}: "
                         f"{sorted(unknown)[:3]}; remove {target.parent} and run again.")
    return target.parent


def check_held_out(test_folder: Path, development: list[Path], same_split: list[Path]) -> None:
    """Checked on every run: each case of the ``development`` datasets is a training case of the test dataset,
    and the ``same_split`` datasets (the 20 % HQ twin) have exactly its test cases."""
    split = json.loads((test_folder / "split.json").read_text())
    for folder in same_split:
        if set(json.loads((folder / "split.json").read_text())["test"]) != set(split["test"]):
            raise SystemExit(f"{folder.name} has other test cases than {test_folder.name}; remove it (raw and "
                             "preprocessed) and run again.")
    train = set(split["train"])
    for folder in development:
        cases = json.loads((folder / "split.json").read_text())
        leaked = sorted((set(cases["train"]) | set(cases["test"])) - train)
        if leaked:
            raise SystemExit(f"{folder.name} holds {len(leaked)} case(s) that are not training cases of "
                             f"{test_folder.name} (first: {leaked[0]}), so a test case could steer a choice; remove "
                             f"{folder} (raw and preprocessed) and its links and run again.")


def require_same_split(development: Path, twin: Path) -> None:
    """The milder-noise ``twin`` has ``development``'s training and validation cases and HQ tags (rows pair by case)."""
    def cases_and_tags(folder: Path) -> tuple:
        split = json.loads((folder / "split.json").read_text())
        return (sorted(split["train"]), sorted(split["test"]),
                json.loads((folder / "dataset.json").read_text())["label_quality"])
    if cases_and_tags(development) != cases_and_tags(twin):
        raise SystemExit(f"{twin.name} has other cases or HQ tags than {development.name}, so their rows would not "
                         f"pair case by case; remove {twin.name} (raw and preprocessed) and run again.")


def add_cpu_configuration(plans_file: Path, name: str) -> None:
    """:data:`CPU_CONFIGURATIONS` ``name`` and its ``_b2`` twin (the planned batch, the same data) in the plans."""
    base, spacing, patch, stages, (first, last), batch = CPU_CONFIGURATIONS[name]
    for suffix, batch_size in (("", batch), ("_b2", PLANNED_BATCH)):
        add_configuration(plans_file, name + suffix, base, spacing, patch, stages, first, last, batch_size,
                          data_identifier=f"nnUNetPlans_{name}", overwrite=True)


def is_stale(plans_file: Path, name: str) -> bool:
    """True unless configuration ``name`` was preprocessed with exactly its current settings.

    A stamp beside the preprocessed folder (written after preprocessing) holds the configuration it was
    made with, so a changed spacing or patch preprocesses again instead of training on stale data.
    """
    stamp = _stamp(plans_file, name)
    current = json.loads(plans_file.read_text())["configurations"][name]
    data = plans_file.parent / current["data_identifier"]
    return (not stamp.is_file() or json.loads(stamp.read_text()) != current or not data.is_dir()
            or not any(data.iterdir()))


def write_stamp(plans_file: Path, name: str) -> None:
    configuration = json.loads(plans_file.read_text())["configurations"][name]
    write_text_atomic(_stamp(plans_file, name), json.dumps(configuration, indent=1))


def _stamp(plans_file: Path, name: str) -> Path:
    return plans_file.parent / f"nnUNetPlans_{name}.alc_configuration.json"


def prepare(args) -> None:
    raw, preprocessed = Path(os.environ["nnUNet_raw"]), Path(os.environ["nnUNet_preprocessed"])
    data, work = Path(args.data), Path(args.work)
    logs, env = work / "logs", planning_env(os.environ)
    if not (data / "2018LA_Seg_Training Set").is_dir():
        raise SystemExit(f"{data} has no '2018LA_Seg_Training Set' folder: give --data the LA data folder.")
    test = convert(raw, data, args.test_id, ["--hq-fraction", str(args.hq_fraction)], [], logs)
    num_hq = sum(v == "HQ" for v in json.loads((test / "dataset.json").read_text())["label_quality"].values())
    development = development_input(test, data, work)
    twins = [(args.dev_id, (3, 15))] + ([(args.mild_id, tuple(args.mild_radius))] if args.mild_id else [])
    noisy = [(test, (3, 15))] + [(convert(raw, development, i, ["--hq-count", str(num_hq)],
                                          ["--test-fraction", "0.25"], logs), r) for i, r in twins]
    if args.hq20_id:  # the same split (the converter's seed), twice the HQ cases
        noisy.append((convert(raw, data, args.hq20_id, ["--hq-fraction", str(2 * args.hq_fraction)], [], logs),
                      (3, 15)))
    folders = [folder for folder, _ in noisy]
    check_held_out(test, folders[1:1 + len(twins)], folders[1 + len(twins):])
    for twin in folders[2:1 + len(twins)]:
        require_same_split(folders[1], twin)
    for folder, radius in noisy:
        make_noisy(folder, radius, logs)
    datasets = list(folders)
    if args.ceiling_id:  # every training label clean: stock nnU-Net on it is the clean-label ceiling
        datasets.append(raw / clean_twin(raw, test.name, args.ceiling_id))
    ids = {folder.name: folder.name[len("Dataset"):].split("_")[0] for folder in datasets}
    unplanned = [ids[n] for n in ids if not (preprocessed / n / "nnUNetPlans.json").is_file()]
    if unplanned:  # one process plans them all (nnU-Net's start-up is seconds)
        run_job(Job("plan", ["nnUNetv2_plan_and_preprocess", "-d", *unplanned, "--no_pp", "-npfp", "2"],
                    logs / "plan.log", env))
    for name in args.configurations:
        stale = []
        for dataset in ids:
            plans = preprocessed / dataset / "nnUNetPlans.json"
            add_cpu_configuration(plans, name)
            stale += [dataset] if is_stale(plans, name) else []
        if stale:
            for dataset in stale:  # the trainers' clean-label cache of the old data would be reused
                data_identifier = json.loads((preprocessed / dataset / "nnUNetPlans.json").read_text())[
                    "configurations"][name]["data_identifier"]
                shutil.rmtree(preprocessed / dataset / f"{data_identifier}_clean_seg", ignore_errors=True)
            run_job(Job(f"preprocess {name}", ["nnUNetv2_preprocess", "-d", *(ids[d] for d in stale), "-c", name,
                                               "-np", "2"], logs / f"preprocess_{name}.log", env))
            for dataset in stale:
                write_stamp(preprocessed / dataset / "nnUNetPlans.json", name)
    print("Prepared: " + ", ".join(ids) + "; configurations "
          + ", ".join(n + s for n in args.configurations for s in ("", "_b2")), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the LA data folder (holding '2018LA_Seg_Training Set')")
    parser.add_argument("--test-id", type=int, required=True, help="dataset id of the test dataset (all 80 cases)")
    parser.add_argument("--dev-id", type=int, required=True, help="dataset id of the development dataset")
    parser.add_argument("--mild-id", type=int, help="dataset id of the development twin with milder noise")
    parser.add_argument("--hq20-id", type=int, help="dataset id of the test dataset's twin with twice the HQ cases")
    parser.add_argument("--ceiling-id", type=int, help="dataset id of the test dataset's clean twin (the ceiling)")
    parser.add_argument("--mild-radius", type=int, nargs=2, default=[2, 8], metavar=("MIN", "MAX"),
                        help="ball radius range of the milder twin (2 8: LQ labels at about 0.75 Dice on LA)")
    parser.add_argument("--hq-fraction", type=float, default=0.1)
    parser.add_argument("--configurations", nargs="+", choices=list(CPU_CONFIGURATIONS),
                        default=list(CPU_CONFIGURATIONS), help="CPU configurations to add and preprocess")
    parser.add_argument("--work", default="la_work", help="links and logs (not for git)")
    args = parser.parse_args(argv)
    missing = [v for v in ("nnUNet_raw", "nnUNet_preprocessed") if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"Set {', '.join(missing)} (nnU-Net's folders) first.")
    prepare(args)


if __name__ == "__main__":
    main(sys.argv[1:])
