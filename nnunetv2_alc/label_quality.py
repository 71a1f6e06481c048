"""Label-quality tags (HQ = trusted, LQ = noisy) stored in a dataset's ``dataset.json``.

The tags live under the key ``"label_quality"``: an object mapping every training case identifier to
``"HQ"`` or ``"LQ"`` (docs/method.md, "Data"). nnU-Net copies ``dataset.json`` into the preprocessed
folder unchanged, so trainers read the tags from there.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

HQ = "HQ"
LQ = "LQ"
QUALITIES = (HQ, LQ)
LABEL_QUALITY_KEY = "label_quality"
TAG_HINT = (
    "Tag the cases with `nnUNetv2_alc_tag -d <dataset> --hq-list <file>` (or `nnUNetv2_alc_make_noisy`), "
    "then copy the raw dataset.json to the preprocessed folder (or re-run nnUNetv2_plan_and_preprocess)."
)


class LabelQualityError(ValueError):
    """A dataset's label-quality tags are missing, incomplete or malformed."""


def read_label_quality(dataset_json: Mapping, source: str) -> dict[str, str]:
    """Return the ``case -> "HQ"/"LQ"`` map of a loaded dataset.json; ``source`` names the file in errors."""
    tags = dataset_json.get(LABEL_QUALITY_KEY)
    if tags is None:
        raise LabelQualityError(f"{source} has no '{LABEL_QUALITY_KEY}' entry. {TAG_HINT}")
    if not isinstance(tags, Mapping):
        raise LabelQualityError(
            f"'{LABEL_QUALITY_KEY}' in {source} must map case identifiers to \"HQ\"/\"LQ\", "
            f"got {type(tags).__name__}. {TAG_HINT}"
        )
    bad = {case: value for case, value in tags.items() if value not in QUALITIES}
    if bad:
        shown = ", ".join(f"{c!r}: {v!r}" for c, v in sorted(bad.items())[:5])
        raise LabelQualityError(
            f"{source}: '{LABEL_QUALITY_KEY}' has {len(bad)} value(s) other than \"HQ\"/\"LQ\" ({shown}). "
            f"Fix those entries. {TAG_HINT}"
        )
    return dict(tags)


def check_cases_tagged(tags: Mapping[str, str], case_ids: Iterable[str], source: str) -> None:
    """Raise if any of ``case_ids`` has no tag."""
    missing = sorted(set(case_ids) - set(tags))
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise LabelQualityError(
            f"{source}: {len(missing)} training case(s) have no '{LABEL_QUALITY_KEY}' tag: {shown}. {TAG_HINT}"
        )


def split_by_quality(case_ids: Iterable[str], tags: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Split ``case_ids`` (all tagged) into (HQ cases, LQ cases), keeping their order."""
    case_ids = list(case_ids)
    return [c for c in case_ids if tags[c] == HQ], [c for c in case_ids if tags[c] == LQ]


def require_both_qualities(case_ids: Iterable[str], tags: Mapping[str, str], what: str) -> tuple[list[str], list[str]]:
    """Split by quality and raise unless ``case_ids`` hold at least one HQ and one LQ case."""
    hq, lq = split_by_quality(case_ids, tags)
    for name, cases in ((HQ, hq), (LQ, lq)):
        if not cases:
            raise LabelQualityError(
                f"{what} has no {name} case ({len(hq)} HQ, {len(lq)} LQ). ALC needs both; tag at least one case "
                f"{name} (`nnUNetv2_alc_tag`) or use a fold/split that contains one."
            )
    return hq, lq


def stratified_folds(case_ids: Iterable[str], tags: Mapping[str, str], n_folds: int = 5,
                     seed: int = 12345) -> list[dict]:
    """nnU-Net style ``splits_final.json`` content, stratified by label quality.

    HQ and LQ cases are shuffled separately (seeded) and dealt round-robin over the folds, so every
    fold's training part holds HQ cases whenever there are at least two of them.
    """
    rng = np.random.RandomState(seed)
    folds = [[] for _ in range(n_folds)]
    offset = 0
    for group in split_by_quality(sorted(case_ids), tags):
        order = rng.permutation(len(group))
        for i, j in enumerate(order):
            folds[(i + offset) % n_folds].append(group[j])
        offset += len(group)
    all_cases = sorted(c for fold in folds for c in fold)
    return [{"train": sorted(set(all_cases) - set(val)), "val": sorted(val)} for val in folds]
