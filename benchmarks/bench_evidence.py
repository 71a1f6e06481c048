"""Does ALC help? The evidence grid: settings x training seeds x methods, with paired statistics.

Every method is trained with the same budget through nnU-Net's CLI (``harness.py``) once per training
seed and HQ/noise setting, predicts the test cases and is scored against their clean labels. A clean-label
ceiling is trained per seed too: stock nnU-Net on a twin of the first setting's dataset in which every
training label is the clean one (``--ceiling-id``). One extra H-Sup run with twice the epochs
(``--budget-check``) shows whether H-Sup is limited by its data or by the budget.

Resumable: each finished run writes ``<out>/runs/<setting>/seed<k>/<trainer>.json`` (per-case metrics, the
foreground it predicts where the clean test label has none, and the curves logged during training) and is
skipped when that file exists; ``--max-minutes`` stops starting new runs after that long, so the grid runs in
pieces across sessions. ``--report-only`` only rebuilds the tables from the finished runs. A grid run at
another batch share (``ALC_HQ_SHARE``, own ``--out``) takes the runs that share does not reach
(:data:`SHARE_FREE`: ceiling, H-Sup, HL-Sup, stock) from a finished grid with ``--borrow-from`` instead of
training them again. The report is rewritten after every run: ``evidence.md`` (tables), ``evidence.json``
(everything) and ``dice_by_seed.png`` / ``label_correction.png``.

    nnUNetv2_alc_synthetic -d 971 --kind regime2d --hq-fraction 0.1 --seed 0
    nnUNetv2_alc_synthetic -d 972 --kind regime2d --hq-fraction 0.2 --seed 0
    nnUNetv2_alc_synthetic -d 973 --kind regime2d --hq-fraction 0.1 --seed 0 --radius 9 15
    python benchmarks/bench_evidence.py --dataset "10% HQ, LQ Dice 0.78=971" --dataset "20% HQ, LQ Dice 0.78=972" \\
        --dataset "10% HQ, LQ Dice 0.40=973" --ceiling-id 970 --seeds 0 1 2 --budget-check \\
        -c 2d --device cpu --tiny-network --batch-size 12 --epochs 30 --iterations 25 --disable-tta \\
        --out benchmarks/results/evidence_cpu2d --max-minutes 100

(environment: nnUNet_raw / nnUNet_preprocessed / nnUNet_results, as for ``bench_accuracy.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from harness import (Bench, add_budget_arguments, add_resume_arguments, alc_environment, budget_from_args,  # noqa: E402
                     logged_curves, out_of_time, parse_settings, work_folder, write_report)
from scipy.stats import wilcoxon  # noqa: E402

from nnunetv2_alc.atomic_write import atomic_folder, write_text_atomic  # noqa: E402
from nnunetv2_alc.evaluation import evaluate_folders  # noqa: E402
from nnunetv2_alc.evaluation.background import background_false_positives, format_count  # noqa: E402
from nnunetv2_alc.progress import ALC_KEYS  # noqa: E402
from nnunetv2_alc.raw_dataset import CLEAN_LABELS_TR, DATASET_JSON, LABELS_TR  # noqa: E402
from nnunetv2_alc.refinement_diagnostics import SELECTION_CHECK_KEYS  # noqa: E402
from nnunetv2_alc.trainer_registry import BENCHMARK_TRAINERS, display_name  # noqa: E402
from noise_generation.make_noisy import mean_lq_dice  # noqa: E402
from paper_tables import paper_dice  # noqa: E402

ALC = "nnUNetTrainerALC"
STOCK = "nnUNetTrainerStock"
HSUP = "nnUNetTrainerHSup"
HLSUP = "nnUNetTrainerHLSup"
SHARE = "ALC_HQ_SHARE"
# training batches without an LQ group (H-Sup: HQ cases only; HL-Sup: every case tagged HQ; both validate at the
# default share) or no ALC at all (stock): the HQ share does not reach them, so their runs count for a grid of any
# ALC_HQ_SHARE (--borrow-from)
SHARE_FREE = (STOCK, HSUP, HLSUP)
CEILING = "ceiling"  # the setting name of the clean-label runs
BUDGET_CHECK = "H-Sup, 2x epochs"
METRIC_KEYS = ("dice", "jaccard", "hd95", "asd")
CURVE_KEYS = ALC_KEYS + ("train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice")
TAIL = 5  # epochs averaged for the selection and label-correction summaries
FIG3_KEYS = ("label_dice_noisy", "label_dice_pseudo", "label_dice_refined")


def clean_twin(raw: Path, source: str, twin_id: int) -> str:
    """``Dataset<twin_id>_<name>Clean``: the source dataset with every training label clean and tagged HQ.

    Images and test cases are the source's; ``labelsTr`` is the source's ``labelsTr_clean`` (LQ cases) or
    ``labelsTr`` (HQ cases, already clean). Written whole (nothing is left of an interrupted copy).
    """
    name = f"Dataset{twin_id:03d}_{source.split('_', 1)[1]}Clean"
    if (raw / name).is_dir():
        return name
    source_folder = raw / source
    if not (source_folder / CLEAN_LABELS_TR).is_dir():
        raise SystemExit(f"{source_folder} has no {CLEAN_LABELS_TR}/: the ceiling needs the clean training labels.")
    with atomic_folder(raw / name) as folder:
        for sub in ("imagesTr", "imagesTs", "labelsTs", LABELS_TR):
            shutil.copytree(source_folder / sub, folder / sub)
        for clean in (source_folder / CLEAN_LABELS_TR).iterdir():
            shutil.copy2(clean, folder / LABELS_TR / clean.name)
        content = json.loads((source_folder / DATASET_JSON).read_text())
        content["label_quality"] = {case: "HQ" for case in content["label_quality"]}
        (folder / DATASET_JSON).write_text(json.dumps(content, indent=2))
    return name


def lq_label_dice(raw: Path, name: str) -> float:
    """Mean Dice of the LQ training labels to their clean labels (the noise manifest's)."""
    manifest = raw / name / "noise_manifest.json"
    if not manifest.is_file():
        return math.nan
    return mean_lq_dice(json.loads(manifest.read_text())["cases"])


def setting_folder(out: Path, setting: str) -> Path:
    """Where a grid keeps the run files of ``setting``: one ``seed<N>`` folder per training seed."""
    return out / "runs" / "".join(c if c.isalnum() else "_" for c in setting)


def run_file(out: Path, setting: str, seed: int, trainer: str) -> Path:
    return setting_folder(out, setting) / f"seed{seed}" / f"{trainer}.json"


def dataset_name(names: dict, setting: str) -> str:
    """The dataset a run of ``setting`` trains on (a budget check's, ``"<setting> [...]"``, is its setting's)."""
    return names[CEILING] if setting == CEILING else names[setting.split(" [")[0]]


def run_budget(budget, seed: int, factor: int):
    """The budget of one run of the grid: its training seed, ``factor`` times the epochs (the budget check)."""
    return replace(budget, seed=seed, epochs=budget.epochs * factor)


def predictions_folder(work: Path, name: str, seed: int, tag: str, trainer: str) -> Path:
    """Where a run of the grid leaves its test predictions."""
    return work / "predictions" / name / f"seed{seed}{tag}" / trainer


def score(references: str, predictions: Path) -> tuple[dict, dict]:
    """Per-case metrics (means over the foreground labels) and the background counts of a prediction folder."""
    evaluation = evaluate_folders(references, {"run": str(predictions)}, num_processes=2, show_progress=False)
    per_case = {case: {k: float(np.mean([m[k] for m in labels.values()])) for k in METRIC_KEYS}
                for case, labels in evaluation["methods"]["run"]["per_case"].items()}
    return per_case, background_false_positives(references, {"run": str(predictions)})["run"]


def run_one(bench: Bench, dataset_id: str, name: str, trainer: str, seed: int, work: Path, tag: str) -> dict:
    """Train, predict and score one model; returns what the run file holds."""
    results = work / "models" / f"seed{seed}{tag}"
    predictions = predictions_folder(work, name, seed, tag, trainer)
    timing = bench.train_and_predict(dataset_id, name, trainer, predictions, tag=f"seed{seed}{tag}", results=results)
    per_case, counts = score(str(bench.raw / name / "labelsTs"), predictions)
    checkpoint = Path(timing["model"]) / "checkpoint_final.pth"
    return {"trainer": trainer, "method": display_name(trainer), "dataset": name, "seed": seed,
            "budget": bench.budget.record(), "seconds": timing["seconds"], "per_case": per_case,
            "curves": logged_curves(checkpoint, CURVE_KEYS),
            "empty_predictions": all(v["dice"] == 0 for v in per_case.values()), "background": counts}


def add_background(target: Path, work: Path, raw: Path, tag: str) -> None:
    """Give a finished run made before runs recorded their background counts those of its saved predictions.

    Only where this grid's ``--work`` still holds predictions of exactly the run's test cases; a borrowed
    run's predictions are in the grid that trained it, so it keeps none.
    """
    run = json.loads(target.read_text())
    predictions = predictions_folder(work, run["dataset"], run["seed"], tag, run["trainer"])
    if "background" in run or "borrowed_from" in run or not predictions.is_dir():
        return
    try:
        counts = background_false_positives(str(raw / run["dataset"] / "labelsTs"), {"run": str(predictions)})["run"]
    except ValueError as error:  # a prediction is missing: leave the run as it is
        print(f"{target}: background not counted: {error}", flush=True)
        return
    if set(counts["volume_ratios"]) <= set(run["per_case"]):
        write_text_atomic(target, json.dumps(run | {"background": counts}, indent=1))


def plan_runs(settings: dict, ceiling: str | None, seeds: list[int], trainers: list[str], budget_check: bool):
    """(setting, dataset id, trainer, seed, epochs factor) in the order they run.

    Setting by setting, each over all seeds, so that a partial grid has whole settings: the first setting
    with the ceiling of each seed, then its budget check, then the other settings.
    """
    runs = []
    for position, (setting, dataset_id) in enumerate(settings.items()):
        for seed in seeds:
            if position == 0 and ceiling is not None:
                runs.append((CEILING, ceiling, STOCK, seed, 1))
            runs += [(setting, dataset_id, trainer, seed, 1) for trainer in trainers]
        if position == 0 and budget_check:
            runs.append((f"{setting} [{BUDGET_CHECK}]", dataset_id, HSUP, seeds[0], 2))
    return runs


def paired(ours: dict, theirs: dict) -> dict:
    """Dice of ``ours`` minus ``theirs`` over matching (seed, case) pairs: mean, std, wins, Wilcoxon p."""
    keys = sorted(set(ours) & set(theirs))
    difference = np.array([100 * (ours[k] - theirs[k]) for k in keys])
    if not difference.size:
        return {"n": 0}
    p = float(wilcoxon(difference).pvalue) if np.any(difference != 0) else 1.0
    return {"n": int(difference.size), "mean": float(difference.mean()), "std": float(difference.std(ddof=1)) if
            difference.size > 1 else 0.0, "wins": int((difference > 0).sum()), "p": p}


def summarise(runs: list[dict]) -> dict:
    """Per setting and method: metric mean ± std over seeds (of the per-seed case means), paired tests vs ALC."""
    table = {}
    order = {name: i for i, name in enumerate(BENCHMARK_TRAINERS)}
    for run in sorted(runs, key=lambda r: (order.get(r["trainer"], len(order)), r["method"] == BUDGET_CHECK)):
        table.setdefault(run["setting"], {}).setdefault(run["method"], []).append(run)
    summary = {}
    for setting, methods in table.items():
        rows = {}
        for method, seeds in methods.items():
            seeds = sorted(seeds, key=lambda r: r["seed"])  # ``per_seed`` lists line up with ``seeds``
            per_seed = {k: [float(np.mean([c[k] for c in r["per_case"].values()])) for r in seeds]
                        for k in METRIC_KEYS}
            rows[method] = {"seeds": [r["seed"] for r in seeds], "per_seed": per_seed,
                            "empty": all(r["empty_predictions"] for r in seeds), "background": background(seeds),
                            "pairs": {f"{r['seed']}/{case}": v["dice"] for r in seeds
                                      for case, v in r["per_case"].items()}}
        alc = rows.get(display_name(ALC))
        for method, row in rows.items():
            row["alc_minus"] = paired(alc["pairs"], row["pairs"]) if alc and method != display_name(ALC) else None
        summary[setting] = rows
    return summary


def background(seeds: list[dict]) -> dict | None:
    """Foreground where the clean test label has none, over a method's runs that counted it (None if none did).

    ``seeds``: the runs counted; ``organ_free_marked``: marked / organ-free test slices over them;
    ``volume_ratio``: predicted / true foreground volume, mean and median over their (seed, test case) pairs
    with a reference foreground (one leaking case moves only the mean).
    """
    counted = [r for r in seeds if "background" in r]
    if not counted:
        return None
    counts = [r["background"] for r in counted]
    ratios = [v for c in counts for v in c["volume_ratios"].values()]
    free = sum(c["organ_free_slices"] for c in counts)
    return {"seeds": sorted(r["seed"] for r in counted),
            "organ_free_marked": sum(c["marked"] for c in counts) / free if free else math.nan,
            "volume_ratio": float(np.mean(ratios)) if ratios else math.nan,
            "volume_ratio_median": float(np.median(ratios)) if ratios else math.nan}


def selection_summary(runs: list[dict]) -> dict:
    """Last-epochs means of the label-correction and selection-check curves of the ALC runs, per setting."""
    out = {}
    for run in runs:
        if run["trainer"] != ALC:
            continue
        curves = run["curves"]
        means = {k: float(np.nanmean(curves[k][-TAIL:])) if curves.get(k) and np.isfinite(curves[k][-TAIL:]).any()
                 else math.nan for k in FIG3_KEYS + SELECTION_CHECK_KEYS + ("selected_fraction",)}
        out.setdefault(run["setting"], []).append(means)
    return {s: {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} for s, ms in out.items()}


def gap_closed(rows: dict, ceiling: dict | None) -> float:
    """(ALC - H-Sup) / (ceiling - H-Sup) of the mean Dice: the share of H-Sup's gap to clean labels ALC closes.

    1 is the clean-label ceiling, 0 is H-Sup, below 0 is worse than H-Sup; nan without the three rows. The
    means are over the seeds all three rows have, so a partial grid does not set one seed against another.
    """
    alc, hsup = rows.get(display_name(ALC)), rows.get(display_name(HSUP))
    if not (alc and hsup and ceiling):
        return math.nan
    seeds, (alc_dice, hsup_dice, ceiling_dice) = dice_on_common_seeds(alc, hsup, ceiling)
    return (alc_dice - hsup_dice) / (ceiling_dice - hsup_dice) if seeds and ceiling_dice != hsup_dice else math.nan


def dice_on_common_seeds(*rows: dict) -> tuple[list[int], list[float]]:
    """The seeds every row has, and each row's mean Dice over them (of its per-seed means over the test cases)."""
    by_seed = [dict(zip(row["seeds"], row["per_seed"]["dice"])) for row in rows]
    seeds = sorted(set.intersection(*(set(d) for d in by_seed)))
    return seeds, [float(np.mean([d[s] for s in seeds])) if seeds else math.nan for d in by_seed]


def paper_lines(rows: dict, table: str) -> list[str]:
    """Our Dice and ALC's lead beside the paper's, for the methods of ``table`` that ran here.

    Each row's Dice and ALC's lead over it are means over the seeds the row and ALC both have (listed), so
    while a grid is partial no lead sets one seed's ALC against another seed's method.
    """
    paper = paper_dice(table)
    ours = {trainer: rows[display_name(trainer)] for trainer in paper if display_name(trainer) in rows}
    alc = rows.get(display_name(ALC))
    if alc is None:
        return []
    lines = ["", f"Beside the paper ({table}: its V-Net at full resolution on a GPU, so compare the orderings and "
             "the differences, not the levels; each row over the seeds it shares with ALC):", "",
             "| Method | seeds | Dice, ours | Dice, paper | ALC - method, ours | ALC - method, paper |",
             "|---|---|---:|---:|---:|---:|"]
    for trainer, row in ours.items():
        seeds, (alc_dice, dice) = dice_on_common_seeds(alc, row)
        if not seeds:
            continue
        lines.append(f"| {display_name(trainer)} | {','.join(map(str, seeds))} | {100 * dice:.2f} | "
                     f"{paper[trainer]:.2f} | {100 * (alc_dice - dice):+.2f} | {paper[ALC] - paper[trainer]:+.2f} |")
    return lines


def fmt(values: list[float], scale: float = 1.0) -> str:
    v = np.array(values) * scale
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v.mean():.2f}"


def environment_text(budget: dict) -> str:
    """`` with ALC_X=...`` for the ALC settings of the command's environment, empty without any."""
    settings = budget.get("alc_environment", {})
    return " with " + ", ".join(f"`{k}={v}`" for k, v in settings.items()) if settings else ""


def borrowed_text(report: dict) -> str:
    """`` (N borrowed from FOLDER)`` for the runs copied by ``--borrow-from``, empty without any."""
    borrowed = report.get("borrowed", {})
    return "".join(f" ({n} borrowed from `{folder}`)" for folder, n in borrowed.items())


def others_text(report: dict) -> str:
    """Where the tables also hold runs another command planned (a subset of seeds or trainers): how many in all."""
    files = report.get("run_files", report["finished"])
    return "" if files == report["finished"] else f"; the tables use all {files} run files in the folder"


def markdown(report: dict) -> list[str]:
    lines = [f"# Evidence benchmark ({report['budget']['device_name']}, {report['budget']['configuration']}, "
             f"{report['budget']['epochs']} epochs x {report['budget']['iterations']} iterations)", "",
             f"Command: `{report['command']}`" + environment_text(report['budget']), "",
             f"Runs finished: {report['finished']} of {report['planned']}{borrowed_text(report)}{others_text(report)}.",
             ""]
    ceiling = report["summary"].get(CEILING, {}).get(display_name(STOCK))
    ceiling_text = (f"{fmt(ceiling['per_seed']['dice'], 100)} % Dice (stock nnU-Net on all clean training labels, "
                    f"seeds {ceiling['seeds']})" if ceiling else "not measured yet")
    for setting, rows in report["summary"].items():
        if setting == CEILING:
            continue
        lines += [f"## {setting}", "", f"Dataset {report['datasets'].get(setting, '?')}; LQ training labels at "
                  f"{report['lq_dice'].get(setting, math.nan):.3f} mean Dice to the clean labels; clean-label ceiling "
                  f"{ceiling_text}.", "",
                  "Mean ± std over training seeds of the mean over test cases (Dice, Jaccard in %, distances in mm). "
                  "ALC minus the method: paired over (seed, test case), Dice in % points, Wilcoxon signed-rank p.", "",
                  "| Method | seeds | Dice | Jaccard | HD95 | ASD | ALC - method | ALC better | p |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for method, row in rows.items():
            seeds = ",".join(map(str, row["seeds"]))
            if row["empty"]:
                lines.append(f"| {method} | {seeds} | empty on every test case | | | | | | |")
                continue
            d = row["alc_minus"]
            vs = (f"{d['mean']:+.2f} ± {d['std']:.2f} | {d['wins']}/{d['n']} | {d['p']:.2g}" if d and d["n"]
                  else "| |")
            lines.append(f"| {method} | {seeds} | {fmt(row['per_seed']['dice'], 100)} | "
                         f"{fmt(row['per_seed']['jaccard'], 100)} | {fmt(row['per_seed']['hd95'])} | "
                         f"{fmt(row['per_seed']['asd'])} | {vs} |")
        lines += background_lines(rows)
        selection = report["selection"].get(setting)
        if selection:
            lines += ["", f"ALC's LQ labels on its training patches, mean of the last {TAIL} epochs and of the seeds "
                      "(Dice to the clean label; per-sample means for the selected/unselected split):", "",
                      "| noisy | pseudo | refined | selected: noisy → refined | unselected: noisy → refined "
                      "| agreement with oracle | selected fraction |", "|---:|---:|---:|---:|---:|---:|---:|",
                      f"| {selection['label_dice_noisy']:.3f} | {selection['label_dice_pseudo']:.3f} | "
                      f"{selection['label_dice_refined']:.3f} | {selection['label_dice_noisy_selected']:.3f} → "
                      f"{selection['label_dice_refined_selected']:.3f} | {selection['label_dice_noisy_unselected']:.3f}"
                      f" → {selection['label_dice_refined_unselected']:.3f} | "
                      f"{selection['selection_oracle_agreement']:.3f} | {selection['selected_fraction']:.3f} |"]
        gap = report["gap_closed"].get(setting, math.nan)
        if math.isfinite(gap):
            lines += ["", "Share of H-Sup's gap to the clean-label ceiling that ALC closes, (ALC - H-Sup) / "
                      f"(ceiling - H-Sup) of the mean Dice: {gap:.2f}."]
        if setting in report.get("paper", {}):
            lines += paper_lines(rows, report["paper"][setting])
        lines.append("")
    return lines


def background_lines(rows: dict) -> list[str]:
    """The table of :func:`background` for the methods whose runs have it; nothing if none has."""
    counted = {method: row["background"] for method, row in rows.items() if row.get("background")}
    if not counted:
        return []
    lines = ["", "Foreground where the clean test label has none: the share of organ-free test slices a method "
             "marks (over seeds and cases; none in single-slice data), and predicted / true foreground volume over "
             "the (seed, test case) pairs:", "",
             "| Method | seeds | organ-free slices marked | volume ratio, mean | volume ratio, median |",
             "|---|---|---:|---:|---:|"]
    for method, b in counted.items():
        marked = format_count(100 * b["organ_free_marked"], " %", 1)
        lines.append(f"| {method} | {','.join(map(str, b['seeds']))} | {marked} | {format_count(b['volume_ratio'])} | "
                     f"{format_count(b['volume_ratio_median'])} |")
    return lines


def plot(report: dict, runs: list[dict], out: Path) -> None:
    settings = [s for s in report["summary"] if s != CEILING]
    if not settings:
        return
    methods = dict.fromkeys(method for setting in settings for method in report["summary"][setting])
    colour = {method: f"C{i % 10}" for i, method in enumerate(methods)}  # one colour per method in every panel
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = report["summary"][setting]
        for x, (method, row) in enumerate(rows.items()):
            dice = 100 * np.array(row["per_seed"]["dice"])
            ax.scatter(np.full(dice.size, x), dice, s=18, color=colour[method])
            ax.hlines(dice.mean(), x - 0.3, x + 0.3, color="k", lw=1)
        ceiling = report["summary"].get(CEILING, {}).get(display_name(STOCK))
        if ceiling:
            ax.axhline(100 * np.mean(ceiling["per_seed"]["dice"]), ls="--", color="grey", lw=1, label="clean ceiling")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_xticks(range(len(rows)), list(rows), rotation=45, ha="right", fontsize=7)
        ax.set_title(setting, fontsize=9)
        ax.set_ylabel("test Dice [%] (one point per training seed)")
    fig.tight_layout()
    fig.savefig(out / "dice_by_seed.png", dpi=120)
    plt.close(fig)
    alc_runs = [r for r in runs if r["trainer"] == ALC and r["setting"] in settings]
    if alc_runs:
        fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 3.5), squeeze=False)
        for ax, setting in zip(axes[0], settings):
            for run in (r for r in alc_runs if r["setting"] == setting):
                for key, style in zip(FIG3_KEYS, ("r-", "b--", "g-")):
                    ax.plot(run["curves"].get(key, []), style, lw=1, alpha=0.8,
                            label=key.replace("label_dice_", "") if run["seed"] == alc_runs[0]["seed"] else None)
            ax.set_title(f"{setting}: Dice of LQ labels to clean (ALC)", fontsize=9)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "label_correction.png", dpi=120)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", required=True, help="NAME=DATASET_ID, once per setting")
    parser.add_argument("--ceiling-id", type=int, help="dataset id for the clean twin of the first setting's dataset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--trainers", nargs="+", default=list(BENCHMARK_TRAINERS))
    parser.add_argument("--budget-check", action="store_true", help="one H-Sup run with twice the epochs")
    parser.add_argument("--paper", action="append", default=[],
                        help="NAME=TABLE: put the paper's rows (paper_tables.py: LA10, LA20, NIH10, NIH20) beside "
                             "setting NAME")
    add_budget_arguments(parser)
    parser.add_argument("--out", default="benchmarks/results/evidence")
    add_resume_arguments(parser, "run")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from finished runs")
    parser.add_argument("--borrow-from", metavar="OUT",
                        help="the --out of a finished grid on the same datasets and budget at another ALC_HQ_SHARE: "
                             "its ceiling, H-Sup, HL-Sup and stock runs are copied, not trained again")
    args = parser.parse_args()
    settings, budget, out = parse_settings(args.dataset), budget_from_args(args), Path(args.out)
    paper = parse_settings(args.paper)
    for setting, table in paper.items():
        if setting not in settings:
            parser.error(f"--paper {setting}={table}: no --dataset is named {setting!r}")
        try:
            paper_dice(table)
        except KeyError as error:
            parser.error(f"--paper {setting}={table}: {error.args[0]}")
    if args.borrow_from and not (Path(args.borrow_from) / "runs").is_dir():
        parser.error(f"--borrow-from {args.borrow_from}: no runs/ folder there; give the --out of a finished grid")
    work = work_folder(args, out)
    bench = Bench(budget, out, reuse=True)
    names = {s: bench.dataset(d)[0] for s, d in settings.items()}
    ceiling = None
    if args.ceiling_id is not None:
        ceiling = str(args.ceiling_id)
        names[CEILING] = clean_twin(bench.raw, names[next(iter(settings))], args.ceiling_id)
    plan = plan_runs(settings, ceiling, args.seeds, args.trainers, args.budget_check)
    if args.borrow_from and not args.report_only:  # every run there is to borrow, before the first training
        for setting, _, trainer, seed, factor in plan:
            target = run_file(out, setting, seed, trainer)
            if not target.is_file():
                borrow(run_file(Path(args.borrow_from), setting, seed, trainer), target, setting,
                       dataset_name(names, setting), run_budget(budget, seed, factor))
    start, planned_datasets, environment = time.monotonic(), set(), alc_environment()
    for setting, dataset_id, trainer, seed, factor in plan:
        target, tag = run_file(out, setting, seed, trainer), "" if factor == 1 else f"_x{factor}"
        if target.is_file():
            require_same_environment(target, environment)
            add_background(target, work, bench.raw, tag)
            continue
        if args.report_only:
            continue
        if out_of_time(start, args.max_minutes):
            break
        name = dataset_name(names, setting)
        run_bench = Bench(run_budget(budget, seed, factor), out, reuse=True)
        if name not in planned_datasets:
            run_bench.plan(dataset_id, name)
            planned_datasets.add(name)
        print(f"\n== {setting}, seed {seed}: {display_name(trainer)}", flush=True)
        result = run_one(run_bench, dataset_id, name, trainer, seed, work, tag) | {"setting": setting}
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(result, indent=1))
        report_all(out, budget, plan, names, paper)
    report = report_all(out, budget, plan, names, paper)
    print("\n".join(markdown(report)))


def reaching(trainer: str, environment: dict) -> dict:
    """The ``ALC_*`` settings of ``environment`` that change how ``trainer`` trains (the share does not reach
    :data:`SHARE_FREE`)."""
    return {k: v for k, v in environment.items() if not (k == SHARE and trainer in SHARE_FREE)}


def require_same_environment(run: Path, environment: dict) -> None:
    """Refuse to resume a grid whose finished ``run`` belongs to a grid with other ``ALC_*`` settings.

    A borrowed run counts for the grid it was copied into (``grid_alc_environment``), a trained one for
    the settings it was trained with.
    """
    content = json.loads(run.read_text())
    recorded = content.get("grid_alc_environment", content["budget"].get("alc_environment", {}))
    if recorded != environment:
        raise SystemExit(f"{run} belongs to a grid with the ALC settings {recorded or 'of no ALC_* variable'}, this "
                         f"command has {environment or 'none'}: set the same ALC_* variables, or give another --out "
                         "and --work.")


def borrow_refusal(run: dict, setting: str, dataset: str, budget) -> str | None:
    """Why ``run`` of another grid does not count as this grid's run of ``setting``; None when it does.

    It must be a :data:`SHARE_FREE` trainer's, of the same setting, dataset and budget, trained with the
    same ``ALC_*`` settings but the share.
    """
    recorded, current = run["budget"], budget.record()
    differ = sorted(k for k in recorded.keys() | current.keys()
                    if k != "alc_environment" and recorded.get(k) != current.get(k))
    theirs, ours = (reaching(run["trainer"], b.get("alc_environment", {})) for b in (recorded, current))
    checks = [(run["trainer"] not in SHARE_FREE, f"{run['trainer']} depends on the share"),
              (run["setting"] != setting, f"its setting is {run['setting']!r}"),
              (run["dataset"] != dataset, f"its dataset is {run['dataset']}"),
              (bool(differ), f"its budget differs in {', '.join(differ)}"),
              (theirs != ours, f"it was trained with the ALC settings {theirs}")]
    return "; ".join(reason for failed, reason in checks if failed) or None


def borrow(source: Path, target: Path, setting: str, dataset: str, budget) -> bool:
    """Copy the finished run ``source`` of another grid to ``target`` when it counts as this grid's run.

    The copy names the grid that trained it (``borrowed_from``) and this grid's ``ALC_*`` settings
    (``grid_alc_environment``). A source that does not count is named with the reason. Returns whether
    it copied.
    """
    if not source.is_file():
        return False
    run = json.loads(source.read_text())
    refusal = borrow_refusal(run, setting, dataset, budget)
    if refusal:
        print(f"{source} not borrowed: {refusal}", flush=True)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(run | {"borrowed_from": run.get("borrowed_from", str(source)),
                                                "grid_alc_environment": alc_environment()}, indent=1))
    print(f"{target}: borrowed from {source}", flush=True)
    return True


def report_all(out: Path, budget, plan, names, paper: dict) -> dict:
    """Tables, JSON and plots from every finished run file under ``out``."""
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").rglob("*.json"))]
    for run in runs:
        if run["setting"].endswith(f"[{BUDGET_CHECK}]"):
            run["method"] = BUDGET_CHECK
            run["setting"] = run["setting"].split(" [")[0]
    finished = sum(run_file(out, setting, seed, trainer).is_file() for setting, _, trainer, seed, _ in plan)
    report = {"command": "python " + " ".join(sys.argv), "budget": budget.record(), "planned": len(plan),
              "finished": finished, "run_files": len(runs), "datasets": names,
              "lq_dice": {s: lq_label_dice(Path(os.environ["nnUNet_raw"]), n) for s, n in names.items()},
              "summary": {s: rows for s, rows in sorted(summarise(runs).items(), key=lambda i: _position(names, i[0]))},
              "selection": selection_summary(runs), "paper": paper, "borrowed": borrowed_folders(runs)}
    ceiling = report["summary"].get(CEILING, {}).get(display_name(STOCK))
    report["gap_closed"] = {s: gap_closed(rows, ceiling) for s, rows in report["summary"].items() if s != CEILING}
    write_report(out, "evidence", report, markdown(report))
    plot(report, runs, out)
    return report


def borrowed_folders(runs: list[dict]) -> dict[str, int]:
    """``{grid folder: number of runs}`` of the runs ``--borrow-from`` copied from another grid."""
    folders = [Path(run["borrowed_from"]).parents[3].as_posix() for run in runs if "borrowed_from" in run]
    return {folder: folders.count(folder) for folder in dict.fromkeys(folders)}


def _position(names: dict, setting: str) -> int:
    """Settings in the order of ``--dataset``, the ceiling last."""
    order = [s for s in names if s != CEILING] + [CEILING]
    return order.index(setting) if setting in order else len(order)


if __name__ == "__main__":
    main()
