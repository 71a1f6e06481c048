"""Reading source volumes and checking them: label values, empty labels, image/label grid agreement.

Grid tolerances (a label is accepted on the image grid, and given the image's exact geometry, when
all of these hold):

* same size (voxels per axis);
* spacing equal within 0.1 % per axis;
* origin equal within 10 % of the smallest image spacing (per coordinate, in mm);
* direction cosines equal within 1e-3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nnunetv2_alc.input_errors import InputDataError

SPACING_RTOL = 1e-3
ORIGIN_TOL_IN_SPACINGS = 0.1
DIRECTION_ATOL = 1e-3


def read_image(path: Path) -> sitk.Image:
    """Read an image file with SimpleITK; errors name the file."""
    if not path.is_file():
        raise InputDataError(f"missing file {path}")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "unknown reason"
        raise InputDataError(f"cannot read {path}: {reason}") from None


def binary_label(values: np.ndarray, foreground: int, source: str) -> np.ndarray:
    """Map a label array with values {0, foreground} to uint8 {0, 1}; other values or no foreground are errors."""
    found = np.unique(values)
    unexpected = [v.item() for v in found if v not in (0, foreground)]
    if unexpected:
        shown = ", ".join(str(v) for v in unexpected[:10])
        raise InputDataError(f"label {source} has unexpected values {shown} (expected 0 and {foreground})")
    if foreground not in found:
        raise InputDataError(f"label {source} is empty (no voxel has value {foreground})")
    return (values == foreground).astype(np.uint8)


def grid_mismatch(image: sitk.Image, label: sitk.Image) -> str | None:
    """Describe how the label's voxel grid differs from the image's (beyond the tolerances), or None."""
    if image.GetDimension() != label.GetDimension() or image.GetSize() != label.GetSize():
        return f"size {label.GetSize()} vs image {image.GetSize()}"
    image_spacing, label_spacing = np.array(image.GetSpacing()), np.array(label.GetSpacing())
    if not np.allclose(label_spacing, image_spacing, rtol=SPACING_RTOL, atol=0):
        return f"spacing {tuple(label_spacing)} vs image {tuple(image_spacing)}"
    origin_tol = ORIGIN_TOL_IN_SPACINGS * image_spacing.min()
    if not np.allclose(label.GetOrigin(), image.GetOrigin(), rtol=0, atol=origin_tol):
        return f"origin {label.GetOrigin()} vs image {image.GetOrigin()}"
    if not np.allclose(label.GetDirection(), image.GetDirection(), rtol=0, atol=DIRECTION_ATOL):
        return f"direction {label.GetDirection()} vs image {image.GetDirection()}"
    return None


def read_binary_label(path: Path, foreground: int) -> sitk.Image:
    """Read a label file with values {0, foreground} as a uint8 {0, 1} image on the file's own grid."""
    original = read_image(path)
    label = sitk.GetImageFromArray(binary_label(sitk.GetArrayViewFromImage(original), foreground, str(path)))
    label.CopyInformation(original)
    return label
