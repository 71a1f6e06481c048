"""Label correction over training (paper Fig. 3): are the corrected LQ labels closer to the truth?

An ALC trainer that finds ``labelsTr_clean/`` in the raw dataset measures, every epoch, the Dice
against the clean label of three labels of the LQ patches it trains on: the noisy label, the plain
pseudo-label ``argmax Psi_avg`` and the refined label (Eq. 6); the values are stored in the checkpoint's
log. This script reads them from trained models (e.g. those of ``bench_accuracy.py``), prints a table,
and writes raw JSON, Markdown and a plot::

    python benchmarks/bench_label_correction.py --dataset 10%=961 --dataset 20%=962 -c 2d

(environment: nnUNet_results). ``--trainer`` picks another ALC trainer (``nnUNetTrainerALC_noLR``...).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
from harness import logged_curves, parse_settings, tail_means, write_report  # noqa: E402
from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name  # noqa: E402

from nnunetv2_alc.progress import DIAGNOSTIC_KEYS, LABEL_DICE_KEYS  # noqa: E402

SOURCES = tuple(key.replace("label_dice_", "") for key in LABEL_DICE_KEYS)  # noisy, pseudo, refined


def read_curves(checkpoint_file: Path) -> dict[str, list[float]]:
    """Per-epoch Dice of the noisy, pseudo and refined labels and the refinement diagnostics of an ALC model."""
    logged = logged_curves(checkpoint_file, LABEL_DICE_KEYS + DIAGNOSTIC_KEYS)
    curves = {source: logged[key] for source, key in zip(SOURCES, LABEL_DICE_KEYS)}
    if not curves["noisy"] or all(math.isnan(v) for v in curves["noisy"]):
        raise SystemExit(f"{checkpoint_file} holds no label-correction curves: the raw dataset had no labelsTr_clean/ "
                         "when it was trained, or the trainer runs no teacher.")
    return curves | {key: logged[key] for key in DIAGNOSTIC_KEYS}


def summarise(curves: dict[str, list[float]], tail: int) -> dict[str, float]:
    """Mean of each curve over the last ``tail`` epochs, and refined minus noisy / pseudo."""
    means = tail_means(curves, tail)
    return means | {"refined_minus_noisy": means["refined"] - means["noisy"],
                    "refined_minus_pseudo": means["refined"] - means["pseudo"]}


def format_summary(entries: dict[str, dict], tail: int) -> list[str]:
    lines = [f"Mean over the last {tail} epochs (Dice against the clean labels, LQ patches trained on):", "",
             "| setting | noisy | pseudo | refined | refined - noisy |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {s} | {e['summary']['noisy']:.4f} | {e['summary']['pseudo']:.4f} | "
              f"{e['summary']['refined']:.4f} | {e['summary']['refined_minus_noisy']:+.4f} |"
              for s, e in entries.items()]
    lines += ["", "Refinement diagnostics (docs/method.md, \"Diagnostics\"), same epochs:", "",
              "| setting | " + " | ".join(DIAGNOSTIC_KEYS) + " |", "|---|" + "---:|" * len(DIAGNOSTIC_KEYS)]
    return lines + [f"| {s} | " + " | ".join(f"{e['summary'].get(k, float('nan')):.4f}" for k in DIAGNOSTIC_KEYS)
                    + " |" for s, e in entries.items()]


def format_curves(entries: dict[str, dict], every: int) -> list[str]:
    lines = []
    for setting, entry in entries.items():
        curves = entry["curves"]
        epochs = sorted(set(range(0, len(curves["noisy"]), max(1, every))) | {len(curves["noisy"]) - 1})
        lines += ["", f"{setting}, per epoch:", "", "| epoch | noisy | pseudo | refined |", "|---:|---:|---:|---:|"]
        lines += [f"| {e} | " + " | ".join(f"{curves[s][e]:.4f}" for s in SOURCES) + " |" for e in epochs]
    return lines


def plot(entries: dict[str, dict], filename: Path) -> None:
    fig, axes = plt.subplots(1, len(entries), figsize=(5 * len(entries), 4), squeeze=False)
    for ax, (setting, entry) in zip(axes[0], entries.items()):
        for source in SOURCES:
            ax.plot(entry["curves"][source], label=source)
        ax.set(title=f"{setting} HQ: Dice vs clean labels (LQ patches)", xlabel="epoch", ylabel="Dice")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(filename, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", required=True, help="NAME=DATASET_ID, once per HQ setting")
    parser.add_argument("-c", dest="configuration", default="3d_fullres")
    parser.add_argument("--trainer", default="nnUNetTrainerALC")
    parser.add_argument("--fold", default="all")
    parser.add_argument("--tail", type=int, default=5, help="epochs averaged in the summary")
    parser.add_argument("--out", default="benchmarks/results/label_correction")
    args = parser.parse_args()
    if not os.environ.get("nnUNet_results"):
        raise SystemExit("Set nnUNet_results (nnU-Net's results folder) first.")
    entries = {}
    for setting, dataset_id in parse_settings(args.dataset).items():
        name = maybe_convert_to_dataset_name(dataset_id)
        model = (Path(os.environ["nnUNet_results"]) / name / f"{args.trainer}__nnUNetPlans__{args.configuration}"
                 / f"fold_{args.fold}")
        curves = read_curves(model / "checkpoint_final.pth")
        entries[setting] = {"dataset": name, "model": str(model), "curves": curves,
                            "summary": summarise(curves, args.tail)}
    out = Path(args.out)
    report = {"command": "python " + " ".join(sys.argv), "trainer": args.trainer, "settings": entries}
    epochs = max(len(e["curves"]["noisy"]) for e in entries.values())
    summary = format_summary(entries, args.tail)
    markdown = [f"# Label correction ({args.trainer}, {args.configuration})", "", f"Command: `{report['command']}`", "",
                *summary, *format_curves(entries, every=max(1, epochs // 10)),
                "", "![label correction curves](label_correction.png)"]
    write_report(out, "label_correction", report, markdown)
    plot(entries, out / "label_correction.png")
    print("\n".join(summary))
    print(f"\nRaw curves in {out / 'label_correction.json'}, plot in {out / 'label_correction.png'}")


if __name__ == "__main__":
    main()
