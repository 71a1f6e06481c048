"""Choose which training cases are HQ (trusted labels); the rest are LQ.

One rule for every tool (tagging, noisy-label generation, dataset converters):

* ``hq_list``: exactly the listed cases are HQ (a file with one case id per line, blank lines and
  ``#`` comments ignored; or, from Python, an iterable of case ids).
* ``hq_count``: that many cases, drawn at random.
* ``hq_fraction``: ``round(fraction * n_cases)`` cases (halves rounded up), drawn at random.

The random draw takes the first cases of the sorted case ids shuffled by
``numpy.random.default_rng(seed).permutation``, so the same cases and seed always give the same HQ
set, and the HQ sets of different counts are nested (10 % HQ is a subset of 20 % HQ with the same
seed). A choice that leaves no HQ or no LQ case is an error.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Iterable

import numpy as np

from nnunetv2_alc.label_quality import HQ, LQ
from nnunetv2_alc.input_errors import InputDataError

HqList = str | os.PathLike | Iterable[str]


def read_case_list(path: str | os.PathLike) -> list[str]:
    """Case ids from a text file: one per line, blank lines and lines starting with ``#`` skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle]
    except OSError as error:
        raise InputDataError(f"cannot read case list {path}: {error.strerror or error}") from None
    return [line for line in lines if line and not line.startswith("#")]


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a usable random seed (an integer >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputDataError(f"the seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def count_for_fraction(n_items: int, fraction: float, what: str) -> int:
    """``fraction * n_items`` rounded to the nearest integer, halves up; ``what`` names the fraction in errors."""
    if not 0.0 < fraction < 1.0:
        raise InputDataError(f"the {what} must lie strictly between 0 and 1, got {fraction}")
    return int(math.floor(fraction * n_items + 0.5))


def draw_cases(cases: list[str], count: int, seed: int) -> set[str]:
    """The first ``count`` of the sorted ``cases`` shuffled by ``numpy.random.default_rng(seed).permutation``.

    Taking a prefix of one seeded order makes the draws nested: with the same cases and seed, a
    smaller count picks a subset of what a larger count picks.
    """
    order = np.random.default_rng(check_seed(seed)).permutation(sorted(cases))
    return set(order[: max(count, 0)].tolist())


def _listed_hq(case_ids: list[str], hq_list: HqList) -> list[str]:
    """The HQ cases named by a list file or iterable, all of which must be among ``case_ids``."""
    from_file = isinstance(hq_list, (str, os.PathLike))
    listed = read_case_list(hq_list) if from_file else [str(c) for c in hq_list]
    source = f"HQ list {os.fspath(hq_list)}" if from_file else "the HQ list"
    unknown = sorted(set(listed) - set(case_ids))
    if unknown:
        raise InputDataError(f"{source} names {len(unknown)} unknown training case(s): {', '.join(unknown[:10])}")
    return sorted(set(listed))


def select_hq(
    case_ids: Iterable[str],
    hq_fraction: float | None = None,
    hq_count: int | None = None,
    hq_list: HqList | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Tag every case HQ or LQ by exactly one of ``hq_fraction``, ``hq_count``, ``hq_list`` (see module doc)."""
    cases = sorted(case_ids)
    given = [name for name, value in (("hq_fraction", hq_fraction), ("hq_count", hq_count), ("hq_list", hq_list))
             if value is not None]
    if len(given) != 1:
        raise InputDataError(f"give exactly one of hq_fraction, hq_count, hq_list (got {', '.join(given) or 'none'})")
    if hq_list is not None:
        hq = set(_listed_hq(cases, hq_list))
        what = "the HQ list"
    else:
        if hq_fraction is not None:
            count = count_for_fraction(len(cases), hq_fraction, "HQ fraction")
            what = f"HQ fraction {hq_fraction} of {len(cases)} cases ({count} HQ)"
        else:
            count = int(hq_count)
            what = f"HQ count {count} of {len(cases)} cases"
        hq = draw_cases(cases, count, seed)
    if not hq or len(hq) == len(cases):
        missing = HQ if not hq else LQ
        raise InputDataError(f"{what} leaves no {missing} case; ALC needs at least one HQ and one LQ case")
    return {case: HQ if case in hq else LQ for case in cases}


def has_hq_choice(hq_fraction: float | None, hq_count: int | None, hq_list: HqList | None) -> bool:
    """Whether any HQ selection option was given."""
    return any(value is not None for value in (hq_fraction, hq_count, hq_list))


def add_hq_arguments(parser: argparse.ArgumentParser, required: bool, with_list: bool = True) -> None:
    """Add the mutually exclusive ``--hq-fraction`` / ``--hq-count`` [/ ``--hq-list``] options and ``--seed``."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--hq-fraction", type=float, metavar="F",
                       help="tag round(F * number of training cases) random cases HQ, e.g. 0.1 or 0.2")
    group.add_argument("--hq-count", type=int, metavar="N", help="tag N random training cases HQ")
    if with_list:
        group.add_argument("--hq-list", metavar="FILE",
                           help="text file with the HQ case ids, one per line (# comments allowed)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed for the HQ draw (and for anything else random); default 0")


def describe_tags(tags: dict[str, str]) -> str:
    """One-line count of a tag map, e.g. ``"80 training cases: 8 HQ, 72 LQ"``."""
    n_hq = sum(1 for quality in tags.values() if quality == HQ)
    return f"{len(tags)} training cases: {n_hq} {HQ}, {len(tags) - n_hq} {LQ}"
