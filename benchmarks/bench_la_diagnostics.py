"""Why does ALC trail H-Sup on the Left Atrium? Controlled runs on a validation split, one table row each.

Every row is one model trained through nnU-Net's CLI (``harness.py``) on the development dataset that
``la_prepare.py`` makes from the training cases only (its ``imagesTs`` are validation cases; the real
test cases are never seen), predicting the validation cases and scored against their clean labels. The
rows (:data:`ROWS`) separate the causes the issue names: HQ samples per step, the LQ loss terms, the
teacher's labels (an oracle), the budget, the noise level and the batch nnU-Net plans by default.
Besides Dice, Jaccard, HD95 and ASD each row has the share of organ-free slices marked as foreground,
the predicted / true volume, the EMA pseudo Dice at 1/2, 3/4 and the end of training (still rising?)
and, for ALC-type rows, the Dice of their LQ training labels to the clean ones.

Resumable: a finished row writes ``<out>/runs/<row>/seed<k>.json`` and is skipped later (refused if the
command's budget differs from the one it was trained with; models and predictions sit in folders named for
their budget);
``--max-minutes`` stops starting rows after that long; ``--report-only`` rebuilds the report
(``diagnostics.md``, ``diagnostics.json``, ``curves.png``, and ``budget.png``: validation Dice against the
iterations of the rows trained at several budgets) from the finished runs.

    python benchmarks/la_prepare.py --data PATH/TO/LeftAtrium --test-id 600 --dev-id 601 --mild-id 602
    python benchmarks/bench_la_diagnostics.py --dev-id 601 --mild-id 602 -c 2d_cpu --device cpu \\
        --epochs 40 --iterations 25 --disable-tta --out benchmarks/results/la_diagnostics_cpu2d --max-minutes 90

(environment: nnUNet_raw / nnUNet_preprocessed / nnUNet_results, as for ``bench_accuracy.py``.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from bench_evidence import CURVE_KEYS, METRIC_KEYS, fmt, lq_label_dice, paired, score  # noqa: E402
from harness import (Bench, add_budget_arguments, add_resume_arguments, budget_from_args, logged_curves,  # noqa: E402
                     out_of_time, require_added_configuration, tail_means, work_folder, write_report)

from nnunetv2_alc.atomic_write import write_text_atomic  # noqa: E402

HSUP, STOCK, MT, ALC, ORACLE = ("nnUNetTrainerHSup", "nnUNetTrainerStock", "nnUNetTrainerMeanTeacher",
                                "nnUNetTrainerALC", "nnUNetTrainerALC_oracle")
HQ_FORCED, HSUP_SAMPLE_DICE = "nnUNetTrainerALC_hqforced", "nnUNetTrainerHSup_sampleDice"
BATCH2 = "_b2"  # configuration suffix of la_prepare.py's twin configuration at nnU-Net's planned batch (2)
TAIL = 5  # epochs averaged for the label-correction columns
LABEL_KEYS = ("label_dice_noisy", "label_dice_refined", "label_dice_refined_selected", "selection_oracle_agreement")


@dataclass(frozen=True)
class Row:
    """One controlled run: a trainer with ALC settings, a batch, a budget multiple and a noise level."""

    key: str
    label: str
    trainer: str
    settings: dict = field(default_factory=dict)
    batch2: bool = False  # nnU-Net's planned batch of 2 instead of the configuration's
    factor: int = 1  # iterations per epoch x factor
    mild: bool = False  # the milder-noise dataset


# Rows name every setting they need, whatever the defaults: the paper's 4 HQ of 24, or half the batch (H-Sup
# trains on HQ cases only; its validation batches keep the LQ cases and are now composed at the default half
# whatever the share). The first rows ran before the default changed from 1/6 to 1/2: "hsup" with validation
# batches of 2 HQ + 10 LQ (its EMA pseudo Dice, and, through the random stream the CPU loaders share, which
# training patches it drew), "alc", "mt" and "alc_beta0" at 1/6.
PAPER = {"hq_share": 1 / 6}
HALF = {"hq_share": 0.5}
ROWS = (  # in the order they run: the causes first, then the budget, the weights, the noise and the batch
    Row("hsup", "H-Sup", HSUP, HALF),
    Row("stock", "HL-Sup (stock nnU-Net)", STOCK),
    Row("alc", "ALC (paper share 1/6 HQ)", ALC, PAPER),
    Row("hsup_2hq", "H-Sup, 2 HQ samples a step (batch 2)", HSUP, HALF, batch2=True),
    Row("mt", "Mean Teacher (share 1/6 HQ)", MT, PAPER),
    Row("alc_hq05", "ALC, hq_share 1/2", ALC, HALF),
    Row("alc_beta0", "ALC, beta 0", ALC, {**PAPER, "beta": 0}),
    Row("alc_oracle", "ALC, oracle labels for the selected", ORACLE, PAPER),
    Row("hsup_x2", "H-Sup, 2x iterations", HSUP, HALF, factor=2),
    Row("alc_hq05_x2", "ALC, hq_share 1/2, 2x iterations", ALC, HALF, factor=2),
    Row("alc_x2", "ALC, 2x iterations", ALC, PAPER, factor=2),
    Row("hsup_x4", "H-Sup, 4x iterations", HSUP, HALF, factor=4),
    Row("alc_hq05_x4", "ALC, hq_share 1/2, 4x iterations", ALC, HALF, factor=4),
    Row("stock_x2", "HL-Sup (stock), 2x iterations", STOCK, factor=2),
    Row("alc_x4", "ALC, 4x iterations", ALC, PAPER, factor=4),
    Row("alc_lambda03", "ALC, hq_share 1/2, lambda_max 0.3", ALC, {**HALF, "lambda_max": 0.3}),
    Row("alc_lambda003", "ALC, hq_share 1/2, lambda_max 0.03", ALC, {**HALF, "lambda_max": 0.03}),
    Row("alc_alpha1", "ALC, hq_share 1/2, alpha 1", ALC, {**HALF, "alpha": 1}),
    Row("stock_mild", "HL-Sup (stock), milder noise", STOCK, mild=True),
    Row("alc_mild", "ALC, milder noise", ALC, PAPER, mild=True),
    Row("alc_hq05_mild", "ALC, hq_share 1/2, milder noise", ALC, HALF, mild=True),
    Row("alc_b2", "ALC at batch 2 (1 HQ + 1 LQ), 6x iterations", ALC, PAPER, batch2=True, factor=6),
    Row("hsup_b2", "H-Sup at batch 2, 6x iterations", HSUP, HALF, batch2=True, factor=6),
    Row("stock_b2", "HL-Sup (stock) at batch 2, 6x iterations", STOCK, batch2=True, factor=6),
    Row("stock_x4", "HL-Sup (stock), 4x iterations", STOCK, factor=4),
    Row("mt_hq05", "Mean Teacher, hq_share 1/2", MT, HALF),
    Row("mt_hq05_x4", "Mean Teacher, hq_share 1/2, 4x iterations", MT, HALF, factor=4),
    Row("hsup_x8", "H-Sup, 8x iterations", HSUP, HALF, factor=8),
    Row("alc_hq05_x8", "ALC, hq_share 1/2, 8x iterations", ALC, HALF, factor=8),
    Row("alc_alpha1_x4", "ALC, hq_share 1/2, alpha 1, 4x iterations", ALC, {**HALF, "alpha": 1}, factor=4),
    Row("stock_mild_x4", "HL-Sup (stock), milder noise, 4x iterations", STOCK, mild=True, factor=4),
    Row("alc_hq05_mild_x4", "ALC, hq_share 1/2, milder noise, 4x iterations", ALC, HALF, mild=True, factor=4),
    # what makes ALC at batch 2 mark organ-free slices: its one HQ sample a step (alone, forced, or H-Sup's two
    # samples without the batch Dice that couples them), L_c alone, or the LQ labels
    Row("alc_lambda0_b2", "ALC at batch 2, LQ terms off (lambda_max 0), 6x iterations", ALC,
        {**PAPER, "lambda_max": 0}, batch2=True, factor=6),
    Row("mt_b2", "Mean Teacher at batch 2, 6x iterations", MT, PAPER, batch2=True, factor=6),
    Row("alc_beta0_b2", "ALC at batch 2, beta 0, 6x iterations", ALC, {**PAPER, "beta": 0}, batch2=True, factor=6),
    Row("alc_b2_hqf", "ALC at batch 2, HQ sample forced, 6x iterations", HQ_FORCED, PAPER, batch2=True, factor=6),
    Row("alc_lambda0_b2_hqf", "ALC at batch 2, LQ terms off, HQ sample forced, 6x iterations", HQ_FORCED,
        {**PAPER, "lambda_max": 0}, batch2=True, factor=6),
    Row("hsup_b2_sampledice", "H-Sup at batch 2, Dice per sample, 6x iterations", HSUP_SAMPLE_DICE, HALF,
        batch2=True, factor=6),
)
# every row is compared with both, pair by pair; the milder twin has the same split, tags and validation cases, so
# its rows pair too (their "- ALC" is the effect of the milder noise)
REFERENCES = {"minus_hsup": "hsup", "minus_alc": "alc"}


def matched_hsup(row: Row) -> str | None:
    """The H-Sup row at ``row``'s batch and iterations, whatever its noise (H-Sup never reads an LQ label).

    A method that costs accuracy shows here: the row against H-Sup trained exactly as long, at the same batch.
    """
    found = [r.key for r in ROWS if r.trainer == HSUP and (r.batch2, r.factor) == (row.batch2, row.factor)]
    return found[0] if found else None


def run_file(out: Path, row: Row, seed: int) -> Path:
    return out / "runs" / row.key / f"seed{seed}.json"


# rows trained while the default hq_share was 1/6: their run files hold the settings without hq_share
BEFORE_DEFAULT_CHANGE = ("hsup", "alc", "mt", "alc_beta0")
# (row, seed) runs whose trainers compared the LQ labels with a clean-label cache left from data preprocessed at
# another 2d_cpu spacing (la_prepare.py now removes the cache whenever it preprocesses again): their Dice stands
# (the cache only feeds these diagnostics), their LQ label columns do not and are left out
STALE_CLEAN_LABELS = {("alc_hq05", 0), ("alc_beta0", 0), ("mt", 0), ("alc_x2", 0), ("alc_hq05_x2", 0),
                      ("alc_hq05_x4", 0)}


def budget_tag(budget, row: Row) -> str:
    """The folder name of a row's models and predictions: another budget, trainer or setting never reuses them."""
    digest = hashlib.sha1(json.dumps([row.trainer, row.settings], sort_keys=True).encode()).hexdigest()[:8]
    return f"{budget.configuration}_{budget.epochs}x{budget.iterations}_seed{budget.seed}_{digest}"


def same_run(run: dict, row: Row, budget) -> bool:
    """Whether a finished run file was trained as ``row`` with ``budget`` (the device name and torch version aside)."""
    keys = ("configuration", "epochs", "iterations", "seed", "device", "tiny_network", "batch_size", "tta")
    if not all(run["budget"].get(k) == budget.record()[k] for k in keys) or run["trainer"] != row.trainer:
        return False
    if run["budget"].get("alc_environment", {}) != budget.record()["alc_environment"]:  # ALC_* of the command
        return False
    before_change = {k: v for k, v in row.settings.items() if k != "hq_share"}
    return run["settings"] == row.settings or (row.key in BEFORE_DEFAULT_CHANGE and run["settings"] == before_change)


def run_one(bench: Bench, row: Row, dataset_id: str, name: str, seed: int, work: Path) -> dict:
    """Train, predict and score one row; returns what its run file holds."""
    results = work / "models" / row.key / budget_tag(bench.budget, row)
    predictions = work / "predictions" / row.key / budget_tag(bench.budget, row)
    timing = bench.train_and_predict(dataset_id, name, row.trainer, predictions, tag=f"{row.key}_seed{seed}",
                                     settings=row.settings, results=results)
    per_case, background = score(str(bench.raw / name / "labelsTs"), predictions)
    budget = bench.budget
    return {"row": row.key, "label": row.label, "trainer": row.trainer, "settings": row.settings, "seed": seed,
            "dataset": name, "budget": budget.record(), "iterations": budget.epochs * budget.iterations,
            "seconds": timing["seconds"], "per_case": per_case, "background": background,
            "curves": logged_curves(Path(timing["model"]) / "checkpoint_final.pth", CURVE_KEYS)}


def row_budget(budget, row: Row, seed: int):
    """The base budget with this row's batch configuration, iterations and seed."""
    configuration = budget.configuration + (BATCH2 if row.batch2 else "")
    return replace(budget, configuration=configuration, iterations=budget.iterations * row.factor, seed=seed)


def curve_points(values: list[float]) -> list[float]:
    """The EMA pseudo Dice at 1/2, 3/4 and the end of training."""
    if not values:
        return [math.nan] * 3
    return [values[max(0, math.ceil(f * len(values)) - 1)] for f in (0.5, 0.75, 1.0)]


def mean_of_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarise(runs: list[dict]) -> dict:
    """Per row: metric means over seeds, paired Dice difference to H-Sup, background and curve columns."""
    by_row: dict[str, list[dict]] = {}
    for run in runs:
        by_row.setdefault(run["row"], []).append(run)
    pairs = {key: {f"{r['seed']}/{c}": v["dice"] for r in rs for c, v in r["per_case"].items()}
             for key, rs in by_row.items()}
    summary = {}
    for row in ROWS:
        seeds = by_row.get(row.key)
        if not seeds:
            continue
        per_seed = {k: [float(np.mean([c[k] for c in r["per_case"].values()])) for r in seeds] for k in METRIC_KEYS}
        tails = [tail_means({k: r["curves"].get(k, []) for k in LABEL_KEYS}, TAIL) for r in seeds
                 if (r["row"], r["seed"]) not in STALE_CLEAN_LABELS]
        labels = {k: mean_of_finite([t[k] for t in tails]) for k in LABEL_KEYS}
        summary[row.key] = {
            "label": row.label, "seeds": sorted(r["seed"] for r in seeds), "iterations": seeds[0]["iterations"],
            "per_seed": per_seed,
            **{name: paired(pairs[row.key], pairs[key]) if key in pairs and key != row.key else None
               for name, key in {**REFERENCES, "minus_hsup_matched": matched_hsup(row)}.items()},
            "organ_free_marked": float(np.mean([r["background"]["rate"] for r in seeds])),
            "volume_ratio": float(np.mean([r["background"]["volume_ratio"] for r in seeds])),
            "ema_dice": np.nanmean([curve_points(r["curves"]["ema_fg_dice"]) for r in seeds], axis=0).tolist(),
            "labels": labels, "minutes": float(np.mean([sum(r["seconds"].values()) / 60 for r in seeds])),
        }
    return summary


def markdown(report: dict) -> list[str]:
    budget = report["budget"]
    lines = [f"# Left Atrium diagnostics ({budget['device_name']}, {budget['configuration']}, base budget "
             f"{budget['epochs']} epochs x {budget['iterations']} iterations)", "",
             f"Command: `{report['command']}`", "", f"Rows finished: {report['finished']} of {report['planned']} "
             f"(rows x seeds).", "",
             f"Validation cases of the development split, clean labels. LQ training labels: "
             f"{report['lq_dice']['paper']:.3f} mean Dice to the clean ones (paper noise), "
             + (f"{report['lq_dice']['mild']:.3f} (milder noise)." if "mild" in report["lq_dice"]
                else "milder noise not given (--mild-id)."), "",
             "Dice and Jaccard in %, HD95 and ASD in mm: mean ± std over seeds of the case means. "
             "\"- H-Sup\" and \"- ALC\": the row minus H-Sup and minus ALC at the paper's share, paired over "
             "(seed, case), Dice points, row better / pairs, Wilcoxon p; \"- H-Sup, same budget\": minus H-Sup at "
             "the row's batch and iterations. Organ-free: share of the slices without "
             "atrium that the row marks. EMA pseudo Dice (nnU-Net's, on the HQ training cases; stock nnU-Net: on "
             "all of them, against the labels as given) at 1/2, 3/4 and the end. LQ labels: Dice to the clean "
             "label of the noisy and refined labels on ALC's trained patches "
             f"(last {TAIL} epochs), refined for the selected ones, and how often selection agrees with the "
             "oracle; left empty for the runs that compared with a stale clean-label cache (STALE_CLEAN_LABELS in "
             "the script).", "",
             "| Row | seeds | iterations | Dice | Jaccard | HD95 | ASD | - H-Sup | better | p | - ALC | better | p "
             "| - H-Sup, same budget | better | p | organ-free marked | volume ratio | EMA pseudo Dice "
             "| LQ labels noisy / refined / selected / agreement | minutes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|"]
    for row in report["summary"].values():
        vs = " | ".join(f"{d['mean']:+.2f} ± {d['std']:.2f} | {d['wins']}/{d['n']} | {d['p']:.2g}" if d and d["n"]
                        else "| |" for d in (row["minus_hsup"], row["minus_alc"], row["minus_hsup_matched"]))
        labels = row["labels"]
        label_text = ("" if all(math.isnan(v) for v in labels.values())
                      else " / ".join(f"{labels[k]:.3f}" for k in LABEL_KEYS))
        lines.append(f"| {row['label']} | {','.join(map(str, row['seeds']))} | {row['iterations']} | "
                     f"{fmt(row['per_seed']['dice'], 100)} | {fmt(row['per_seed']['jaccard'], 100)} | "
                     f"{fmt(row['per_seed']['hd95'])} | {fmt(row['per_seed']['asd'])} | {vs} | "
                     f"{100 * row['organ_free_marked']:.1f} % | {row['volume_ratio']:.2f} | "
                     f"{' → '.join(f'{v:.3f}' for v in row['ema_dice'])} | {label_text} | {row['minutes']:.1f} |")
    missing = [f"{key} (seed {s})" for key, s in report["plan"] if key not in report["summary"]
               or s not in report["summary"][key]["seeds"]]
    lines += ["", "Still to run: " + (", ".join(missing) if missing else "nothing") + "."]
    return lines


def budget_points(summary: dict) -> dict[str, list[tuple[int, float]]]:
    """Validation Dice (%) against iterations for each row trained at several budgets (``<row>`` and ``<row>_x<n>``)."""
    families: dict[str, list[tuple[int, float]]] = {}
    for key, row in summary.items():
        families.setdefault(re.sub(r"_x\d+$", "", key), []).append(
            (row["iterations"], 100 * float(np.mean(row["per_seed"]["dice"]))))
    return {key: sorted(points) for key, points in families.items() if len(points) > 1}


def plot_budget(summary: dict, out: Path) -> None:
    """``budget.png``: who is still improving? Validation Dice at 1x, 2x, 4x ... the iterations."""
    families = budget_points(summary)
    if not families:
        return
    labels = {row.key: row.label for row in ROWS}
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for key, points in families.items():
        ax.plot(*zip(*points), "o-", label=labels[key])
    ax.set_xscale("log", base=2)
    iterations = sorted({x for points in families.values() for x, _ in points})
    ax.set_xticks(iterations, [str(x) for x in iterations])
    ax.minorticks_off()
    ax.set_xlabel("training iterations")
    ax.set_ylabel("Dice on the validation cases [%]")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "budget.png", dpi=120)
    plt.close(fig)


def plot(runs: list[dict], out: Path) -> None:
    """EMA pseudo Dice and training loss per epoch of every finished run, against the iteration."""
    if not runs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    order = [r.key for r in ROWS]
    for i, run in enumerate(sorted(runs, key=lambda r: (order.index(r["row"]), r["seed"]))):
        curves = run["curves"]
        per_epoch = run["iterations"] / max(1, len(curves["ema_fg_dice"]))
        x = per_epoch * (np.arange(len(curves["ema_fg_dice"])) + 1)
        position = order.index(run["row"])
        style = dict(color=f"C{position % 10}", ls=("-", "--", ":")[position // 10 % 3], lw=1)
        axes[0].plot(x, curves["ema_fg_dice"], label=f"{run['label']} s{run['seed']}", **style)
        axes[1].plot(x, curves["train_losses"], **style)
    axes[0].set_ylabel("EMA pseudo Dice (HQ training cases; stock: all, as labelled)")
    axes[1].set_ylabel("training loss (L_total)")
    for ax in axes:
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)


def report_all(out: Path, budget, plan, lq_dice: dict, command: str) -> dict:
    """Tables, JSON and the plot from the run files of the rows in :data:`ROWS` (others are left out)."""
    known = {row.key for row in ROWS}
    runs = [run for run in (json.loads(p.read_text()) for p in sorted((out / "runs").rglob("seed*.json")))
            if run["row"] in known]
    done = {(run["row"], run["seed"]) for run in runs}
    report = {"command": command, "budget": budget.record(), "planned": len(plan),
              "finished": sum((row.key, seed) in done for row, seed in plan), "lq_dice": lq_dice,
              "plan": [(row.key, seed) for row, seed in plan], "summary": summarise(runs)}
    write_report(out, "diagnostics", report, markdown(report))
    plot(runs, out)
    plot_budget(report["summary"], out)
    return report


def check_prepared(bench: Bench, datasets: dict, budget, rows: list[Row]) -> None:
    """Every configuration the rows train is in each dataset's plans and preprocessed, before the first row."""
    preprocessed = Path(bench.env["nnUNet_preprocessed"])
    for key, (_, name) in datasets.items():
        for row in (r for r in rows if r.mild == (key == "mild")):
            require_added_configuration(preprocessed / name / "nnUNetPlans.json", row_budget(budget, row, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-id", required=True, help="development dataset (la_prepare.py), paper noise")
    parser.add_argument("--mild-id", help="its twin with milder noise (the *_mild rows are skipped without it)")
    parser.add_argument("--rows", nargs="+", choices=[r.key for r in ROWS], help="rows to run (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    add_budget_arguments(parser)
    parser.add_argument("--out", default="benchmarks/results/la_diagnostics")
    add_resume_arguments(parser, "row")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from finished runs")
    args = parser.parse_args()
    if args.seed != 0:  # every row trains once per --seeds value
        parser.error(f"--seed {args.seed}: the rows' training seeds are --seeds")
    budget, out = budget_from_args(args), Path(args.out)
    work = work_folder(args, out)
    bench = Bench(budget, out, reuse=True)
    datasets = {"paper": (args.dev_id, bench.dataset(args.dev_id)[0])}
    if args.mild_id:
        datasets["mild"] = (args.mild_id, bench.dataset(args.mild_id)[0])
    # the report plans every row (so "still to run" is the whole list); this command runs those of --rows
    plan = [(row, seed) for seed in args.seeds for row in ROWS if not row.mild or args.mild_id]
    rows = [row for row in ROWS if args.rows is None or row.key in args.rows]
    lq_dice = {k: lq_label_dice(bench.raw, name) for k, (_, name) in datasets.items()}
    command = "python " + " ".join(sys.argv)
    if args.report_only:  # the command that trained the rows stays the one to resume with
        previous = out / "diagnostics.json"
        command = json.loads(previous.read_text())["command"] if previous.is_file() else command
    else:
        check_prepared(bench, datasets, budget, [row for row, _ in plan if row in rows])
    start = time.monotonic()
    for row, seed in plan:
        target = run_file(out, row, seed)
        if args.report_only or row not in rows:
            continue
        if target.is_file():
            if not same_run(json.loads(target.read_text()), row, row_budget(budget, row, seed)):
                raise SystemExit(f"{target} was trained with another budget, trainer or settings than this command's "
                                 "row; use another --out (and --work) for another budget, or another row key.")
            continue
        if out_of_time(start, args.max_minutes):
            break
        dataset_id, name = datasets["mild" if row.mild else "paper"]
        print(f"\n== {row.label}, seed {seed}", flush=True)
        result = run_one(Bench(row_budget(budget, row, seed), out, reuse=True), row, dataset_id, name, seed, work)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(result, indent=1))
        report_all(out, budget, plan, lq_dice, command)
    report = report_all(out, budget, plan, lq_dice, command)
    print("\n".join(markdown(report)))


if __name__ == "__main__":
    main()
