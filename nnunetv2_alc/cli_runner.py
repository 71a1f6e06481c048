"""The wrapper that turns bad input into a one-line CLI error.

The console entry points run through :func:`run_cli`, which prints the message of an
:class:`~nnunetv2_alc.input_errors.InputDataError` (or a label-quality tag error) on one line and exits
with status 2 (the status argparse uses for bad arguments) instead of showing a traceback.
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from nnunetv2_alc.input_errors import InputDataError
from nnunetv2_alc.label_quality import LabelQualityError

EXIT_BAD_INPUT = 2


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None, prog: str) -> None:
    """Run ``main(argv)``; on bad input print ``prog: error: <message>`` on one line and exit with 2."""
    try:
        main(argv)
    except (InputDataError, LabelQualityError) as error:
        message = " ".join(str(error).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
