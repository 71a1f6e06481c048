"""Train/test splits of a converted dataset: from list files, or seeded and written down.

* From lists: every case must be in exactly one of the two lists and every listed case must exist.
* Seeded: ``round(test_fraction * n)`` cases (halves up, at least 1 and at most n - 1) drawn with
  ``numpy.random.default_rng(seed)`` from the sorted case ids form the test set.

Either way the split is saved as ``split.json`` in the dataset folder (train, test and how it was made).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from nnunetv2_alc.raw_dataset import save_json
from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.case_selection import count_for_fraction, draw_cases, read_case_list

SPLIT_JSON = "split.json"


@dataclass(frozen=True)
class Split:
    """Sorted train and test case ids and a note on where the split came from."""

    train: list[str]
    test: list[str]
    source: str


def split_from_lists(
    cases: Iterable[str], train_file: Path, test_file: Path, normalize: Callable[[str], str] = str
) -> Split:
    """Split by two list files (one case per line); ``normalize`` maps a list entry to a case id."""
    cases = set(cases)
    listed = {}
    for name, path in (("train", train_file), ("test", test_file)):
        listed[name] = {normalize(entry) for entry in read_case_list(path)}
        unknown = sorted(listed[name] - cases)
        if unknown:
            raise InputDataError(f"{path} names {len(unknown)} case(s) not found in the input: "
                                 f"{', '.join(unknown[:10])}")
    both = sorted(listed["train"] & listed["test"])
    if both:
        raise InputDataError(f"{train_file} and {test_file} both list {', '.join(both[:10])}")
    unlisted = sorted(cases - listed["train"] - listed["test"])
    if unlisted:
        raise InputDataError(
            f"{len(unlisted)} case(s) are in neither {train_file} nor {test_file}: {', '.join(unlisted[:10])}"
        )
    return Split(sorted(listed["train"]), sorted(listed["test"]), f"lists {train_file} and {test_file}")


def seeded_split(cases: Iterable[str], test_fraction: float, seed: int) -> Split:
    """Random split with ``round(test_fraction * n)`` test cases (see module doc)."""
    cases = sorted(cases)
    if len(cases) < 2:
        raise InputDataError(f"a train/test split needs at least 2 cases, found {len(cases)}")
    n_test = min(max(count_for_fraction(len(cases), test_fraction, "test fraction"), 1), len(cases) - 1)
    test = draw_cases(cases, n_test, seed)
    return Split(
        [c for c in cases if c not in test],
        sorted(test),
        f"seeded random split: seed {seed}, test fraction {test_fraction:.4g}",
    )


def write_split(folder: Path, split: Split) -> None:
    """Save the split as ``split.json`` in ``folder``."""
    save_json(folder / SPLIT_JSON, asdict(split))
