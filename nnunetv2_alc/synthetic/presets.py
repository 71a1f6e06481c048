"""The dataset presets: grid, default sizes, and the geometry and appearance parameter ranges.

A range ``(lo, hi)`` is sampled uniformly per case. Sizes in :class:`Geometry` are relative: the
target's base semi-axis is a fraction of the smallest in-plane half field of view, everything else is
a multiple of that base semi-axis, so the same anatomy recipe scales from 40 mm to 96 mm volumes.
Intensities in :class:`Appearance` are relative to the background tissue level (1.0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

Range = tuple[float, float]


@dataclass(frozen=True)
class Geometry:
    """Shape, size and layout of the structures in one case."""

    target_size: Range  # base semi-axis of the target / smallest half field of view
    elongation: Range  # long semi-axis / base semi-axis
    deformation: float  # amplitude of the smooth displacement field / base semi-axis
    neighbour_size: Range  # base semi-axis of the neighbouring structure / target base semi-axis
    distractor_size: Range  # base semi-axis of a distractor / target base semi-axis
    distractors: tuple[int, int]  # inclusive range of the number of distractors


@dataclass(frozen=True)
class Appearance:
    """Intensity model of one case (background tissue = 1.0 before bias field and gain)."""

    contrast: Range  # target level - background level
    neighbour_offset: Range  # |neighbour level / target level - 1|, sign drawn per case
    distractor_offset: float  # max |distractor level / target level - 1|
    edge_fade: Range  # fraction of the target contrast lost on its faded side
    texture: float  # amplitude of the multiplicative tissue texture
    noise: Range  # noise standard deviation / contrast
    bias: float  # amplitude of the log bias field


@dataclass(frozen=True)
class Preset:
    """Everything that defines one ``kind`` of synthetic dataset."""

    kind: str
    dataset_name: str
    shape: tuple[int, int, int]  # nnU-Net array order (z, y, x)
    spacing: tuple[float, float, float]  # mm, same order
    num_train: int
    num_test: int
    radius: tuple[int, int]  # default label-noise radius range (voxels)
    geometry: Geometry
    appearance: Appearance
    description: str


_TINY3D = Preset(
    kind="tiny3d",
    dataset_name="SyntheticTiny3D",
    shape=(20, 40, 40),
    spacing=(2.0, 1.0, 1.0),
    num_train=10,
    num_test=2,
    radius=(1, 3),
    geometry=Geometry(
        target_size=(0.5, 0.6),
        elongation=(1.0, 1.3),
        deformation=0.12,
        neighbour_size=(0.6, 0.8),
        distractor_size=(0.3, 0.45),
        distractors=(1, 1),
    ),
    appearance=Appearance(
        contrast=(0.6, 0.8),
        neighbour_offset=(0.2, 0.3),
        distractor_offset=0.05,
        edge_fade=(0.0, 0.2),
        texture=0.08,
        noise=(0.12, 0.18),
        bias=0.1,
    ),
    description="Tiny anisotropic 3D volumes for CPU tests: one deformed blob, a neighbour, a distractor.",
)
_TINY2D = replace(
    _TINY3D,
    kind="tiny2d",
    dataset_name="SyntheticTiny2D",
    shape=(1, 64, 64),
    spacing=(1.0, 1.0, 1.0),
    description="Single-slice volumes for nnU-Net's 2d configuration: one deformed blob, a neighbour, a distractor.",
)
_BENCHMARK = Preset(
    kind="benchmark",
    dataset_name="SyntheticBenchmark",
    shape=(96, 96, 96),
    spacing=(1.0, 1.0, 1.0),
    num_train=40,
    num_test=20,
    radius=(3, 15),
    geometry=Geometry(
        target_size=(0.36, 0.46),
        elongation=(1.0, 1.6),
        deformation=0.25,
        neighbour_size=(0.7, 1.0),
        distractor_size=(0.45, 0.9),
        distractors=(2, 4),
    ),
    appearance=Appearance(
        contrast=(0.5, 0.8),
        neighbour_offset=(0.02, 0.08),
        distractor_offset=0.06,
        edge_fade=(0.3, 0.6),
        texture=0.1,
        noise=(0.25, 0.4),
        bias=0.25,
    ),
    description=(
        "Deformed, bent organ-like target touching a similar-intensity neighbour, with a faded edge, "
        "target-like distractors, texture, bias field and Rician noise."
    ),
)
_REGIME2D = Preset(
    kind="regime2d",
    dataset_name="SyntheticRegime2D",
    shape=(1, 64, 64),
    spacing=(1.0, 1.0, 1.0),
    num_train=40,
    num_test=50,
    radius=(2, 6),
    geometry=Geometry(
        target_size=(0.35, 0.5),
        elongation=(1.0, 2.0),
        deformation=0.3,
        neighbour_size=(0.6, 1.0),
        distractor_size=(0.3, 0.7),
        distractors=(1, 3),
    ),
    appearance=Appearance(
        contrast=(0.4, 0.9),
        neighbour_offset=(0.15, 0.3),
        distractor_offset=0.15,
        edge_fade=(0.0, 0.25),
        texture=0.1,
        noise=(0.05, 0.15),
        bias=0.3,
    ),
    description=(
        "Single 64 x 64 slices for the CPU evidence benchmark: a learnable target (clean-label ceiling "
        "high) whose shape and appearance vary enough between cases that a few labelled cases do not cover them."
    ),
)
PRESETS: dict[str, Preset] = {preset.kind: preset for preset in (_TINY3D, _TINY2D, _BENCHMARK, _REGIME2D)}
