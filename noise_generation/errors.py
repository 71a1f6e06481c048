"""The error type for bad user input, and the wrapper that turns it into a one-line CLI error.

Every check on user input in :mod:`noise_generation` and :mod:`dataset_conversion` raises
:class:`InputDataError` with a message that names the file (or option) and what is wrong with it.
The console entry points run through :func:`run_cli`, which prints that message on one line and
exits with status 2 (the status argparse uses for bad arguments) instead of showing a traceback.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from nnunetv2_alc.label_quality import LabelQualityError

EXIT_BAD_INPUT = 2


class InputDataError(Exception):
    """Input data or options are unusable: a missing or unreadable file, a wrong value, a clash."""


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None, prog: str) -> None:
    """Run ``main(argv)``; on bad input print ``prog: error: <message>`` on one line and exit with 2."""
    try:
        main(argv)
    except (InputDataError, LabelQualityError) as error:
        message = " ".join(str(error).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
