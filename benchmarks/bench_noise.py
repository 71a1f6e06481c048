"""Speed of :func:`noise_generation.perturb_mask` against scipy.ndimage ball-structure morphology.

Measures, in one run, ball dilation of a 320x320x200 mask (an ellipsoid with semi-axes 100, 80 and
60 voxels, about 10 % of the volume) at radius 3, 9 and 15 with both implementations, checks that
the results are identical voxel for voxel, and writes ``noise_speed.json`` (raw timings) and
``noise_speed.md`` (table) to ``benchmarks/results/``. scipy's cost grows with the number of
voxels in the ball, so it is timed once per radius (``--scipy-repeats``); ours takes the best of
``--repeats`` runs. Our erosion is timed too, for reference.

    python benchmarks/bench_noise.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import scipy
from scipy import ndimage

from noise_generation import perturb_mask
from noise_generation.morphology import ball_structure

RESULTS = Path(__file__).resolve().parent / "results"


def ellipsoid_mask(shape: tuple[int, int, int], semi_axes: tuple[float, float, float]) -> np.ndarray:
    """Boolean ellipsoid centred in ``shape``."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g - (s - 1) / 2) / a) ** 2 for g, s, a in zip(grids, shape, semi_axes)) <= 1


def timed(function: Callable[[], np.ndarray], repeats: int) -> tuple[list[float], np.ndarray]:
    """Wall-clock seconds of each of ``repeats`` calls, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(report: dict) -> str:
    """The report as a Markdown page with one table row per radius."""
    lines = [
        "# Ball morphology speed: `perturb_mask` vs `scipy.ndimage.binary_dilation`",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; Python "
        f"{report['machine']['python']}, numpy {report['machine']['numpy']}, scipy {report['machine']['scipy']}; "
        f"load average at start/end {report['load_average_start']} / {report['load_average_end']}  ",
        f"Mask: {report['mask']['description']}, shape {tuple(report['mask']['shape'])}, "
        f"{report['mask']['foreground_voxels']} foreground voxels",
        "",
        "| radius | ball voxels | scipy dilation (s) | ours dilation (s) | speed-up | identical | ours erosion (s) |",
        "|---:|---:|---:|---:|---:|:---:|---:|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['radius']} | {row['ball_voxels']} | {row['scipy_dilate_s']:.2f} | {row['ours_dilate_s']:.2f} | "
            f"{row['speedup']:.1f}x | {'yes' if row['identical'] else 'NO'} | {row['ours_erode_s']:.2f} |"
        )
    lines += ["", "scipy: one run per radius (`--scipy-repeats`); ours: best of "
              f"{report['repeats']} runs. The machine is shared, so absolute times vary; the ratios are measured "
              "in the same run.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=(320, 320, 200))
    parser.add_argument("--radii", type=int, nargs="+", default=(3, 9, 15))
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per radius (best is reported)")
    parser.add_argument("--scipy-repeats", type=int, default=1, help="runs of scipy per radius (best is reported)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    shape = tuple(args.shape)
    semi_axes = tuple(s * f for s, f in zip(shape, (100 / 320, 80 / 320, 60 / 200)))
    mask = ellipsoid_mask(shape, semi_axes)
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__), *sys.argv[1:]]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__},
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "mask": {"description": f"centred ellipsoid, semi-axes {tuple(round(a, 1) for a in semi_axes)} voxels",
                 "shape": list(shape), "foreground_voxels": int(mask.sum())},
        "repeats": args.repeats,
        "scipy_repeats": args.scipy_repeats,
        "results": [],
    }
    for radius in args.radii:
        ball = ball_structure(radius, 3)
        ours_times, ours = timed(lambda: perturb_mask(mask, "dilate", radius), args.repeats)
        erode_times, _ = timed(lambda: perturb_mask(mask, "erode", radius), args.repeats)
        scipy_times, reference = timed(lambda: ndimage.binary_dilation(mask, ball), args.scipy_repeats)
        row = {
            "radius": radius,
            "ball_voxels": int(ball.sum()),
            "scipy_dilate_s": min(scipy_times),
            "scipy_dilate_runs_s": scipy_times,
            "ours_dilate_s": min(ours_times),
            "ours_dilate_runs_s": ours_times,
            "ours_erode_s": min(erode_times),
            "speedup": min(scipy_times) / min(ours_times),
            "identical": bool(np.array_equal(ours, reference)),
        }
        report["results"].append(row)
        print(f"radius {radius:2d}: scipy {row['scipy_dilate_s']:8.2f} s, ours {row['ours_dilate_s']:6.2f} s, "
              f"speed-up {row['speedup']:7.1f}x, identical {row['identical']}", flush=True)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "noise_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out_dir / "noise_speed.md").write_text(markdown(report))
    print(f"wrote {args.out_dir / 'noise_speed.json'} and {args.out_dir / 'noise_speed.md'}")


if __name__ == "__main__":
    main()
