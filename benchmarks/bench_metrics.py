"""Speed of ``segmentation_metrics`` against medpy on organ-sized 3D masks.

medpy's ``dc``, ``jc``, ``hd95`` and ``asd`` (the paper's four metrics) are timed against one
call of ours, which also returns ASSD. Masks are an ellipsoid deformed by a smoothed random
field (the reference) and the same shape with a further smooth perturbation (the prediction,
Dice ~0.9); the "specks" scenario adds scattered false-positive voxels to the prediction, as
early-training predictions have, which stretches the joint bounding box to the whole image.

Run from the repository root::

    python benchmarks/bench_metrics.py [--pairs 2]

Writes ``benchmarks/results/metrics_speed.json`` (raw timings) and ``.md`` and prints the
table last.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

import medpy
import numpy as np
import scipy
from medpy.metric import binary as medpy_binary
from scipy.ndimage import gaussian_filter

from nnunetv2_alc.evaluation import segmentation_metrics

VOLUMES: tuple[tuple[tuple[int, int, int], tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((160, 160, 96), (0.8, 0.8, 1.5), (34.0, 28.0, 20.0)),
    ((320, 320, 200), (0.625, 0.625, 0.625), (62.0, 52.0, 40.0)),
)
"""(shape, spacing in mm, ellipsoid semi-axes in voxels) of each benchmarked volume."""
SCENARIOS = ("organ", "organ + specks")
SPECKS = 300
REPEATS_OURS = 3


def smooth_field(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation."""
    field = gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return field / field.std()


def mask_pair(shape: tuple[int, int, int], semi_axes: tuple[float, float, float], specks: bool,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference) organ-like masks; see the module docstring."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, size) for size in shape)]
    radius = np.sqrt(sum(((axis - size / 2) / semi) ** 2 for axis, size, semi in zip(grid, shape, semi_axes)))
    shape_field = radius + 0.2 * smooth_field(shape, 8.0, rng)
    reference = shape_field < 1.0
    prediction = shape_field + 0.06 * smooth_field(shape, 4.0, rng) + 0.03 < 1.0
    if specks:
        prediction[tuple(rng.integers(0, size, SPECKS) for size in shape)] = True
    return prediction, reference


def medpy_metrics(prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """The paper's four metrics computed with medpy."""
    return {"dice": medpy_binary.dc(prediction, reference), "jaccard": medpy_binary.jc(prediction, reference),
            "hd95": medpy_binary.hd95(prediction, reference, spacing),
            "asd": medpy_binary.asd(prediction, reference, spacing)}


def timed(function: Callable[[], dict[str, float]], repeats: int) -> tuple[float, dict[str, float]]:
    """Median wall time in seconds over ``repeats`` calls, and the last result."""
    times, result = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def machine() -> dict[str, str | int | float | None]:
    """CPU model, core count, load average (other processes share the cores) and library versions."""
    cpu = platform.processor() or "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "medpy": getattr(medpy, "__version__", "unknown")}


def run(pairs: int) -> list[dict]:
    """Time both implementations on ``pairs`` mask pairs per volume and scenario."""
    rows = []
    for shape, spacing, semi_axes in VOLUMES:
        for scenario in SCENARIOS:
            medpy_times, our_times, max_difference, dice = [], [], 0.0, []
            for seed in range(pairs):
                prediction, reference = mask_pair(shape, semi_axes, scenario != "organ", seed)
                medpy_time, expected = timed(lambda: medpy_metrics(prediction, reference, spacing), 1)
                our_time, ours = timed(lambda: segmentation_metrics(prediction, reference, spacing), REPEATS_OURS)
                medpy_times.append(medpy_time)
                our_times.append(our_time)
                max_difference = max(max_difference, *(abs(ours[key] - expected[key]) for key in expected))
                dice.append(expected["dice"])
            rows.append({"shape": list(shape), "spacing_mm": list(spacing), "scenario": scenario,
                         "pairs": pairs, "mean_dice": statistics.mean(dice),
                         "medpy_seconds": medpy_times, "ours_seconds": our_times,
                         "speedup": sum(medpy_times) / sum(our_times), "max_abs_difference": max_difference})
            print(f"{'x'.join(map(str, shape))} {scenario}: speed-up {rows[-1]['speedup']:.1f}x", flush=True)
    return rows


def markdown(rows: list[dict], command: str, info: dict) -> str:
    """Result table with the command and machine it was measured with."""
    lines = [f"Command: `{command}`  ",
             f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, numpy {info['numpy']}, "
             f"scipy {info['scipy']}, medpy {info['medpy']}; 1-min load average {info['load_average_1min']} "
             f"at start, {info['load_average_1min_at_end']} at end.  ",
             "medpy: dc + jc + hd95 + asd; ours: one `segmentation_metrics` call (median of "
             f"{REPEATS_OURS} runs per pair; medpy 1 run). Times are means over mask pairs.",
             "",
             "| volume | masks | mean Dice | medpy [s] | ours [s] | speed-up | max abs diff |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {'x'.join(map(str, row['shape']))} | {row['scenario']} | {row['mean_dice']:.3f} | "
                     f"{statistics.mean(row['medpy_seconds']):.2f} | {statistics.mean(row['ours_seconds']):.3f} | "
                     f"{row['speedup']:.1f}x | {row['max_abs_difference']:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the benchmark, write JSON and Markdown, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="mask pairs per volume and scenario (default 2)")
    parser.add_argument("--output-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    command = " ".join(["python", "benchmarks/bench_metrics.py", *sys.argv[1:]])
    info = machine()
    rows = run(args.pairs)
    info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "metrics_speed.json"), "w") as handle:
        json.dump({"command": command, "machine": info, "results": rows}, handle, indent=2)
    table = markdown(rows, command, info)
    with open(os.path.join(args.output_dir, "metrics_speed.md"), "w") as handle:
        handle.write("# Metric speed: nnunetv2_alc vs medpy\n\n" + table)
    print("\n" + table, end="")


if __name__ == "__main__":
    main()
