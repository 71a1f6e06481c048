"""The error type for bad user input.

Every check on user input (converters, noise generation, the synthetic data, the report, the demo)
raises :class:`InputDataError` with a message that names the file (or option) and what is wrong with
it; :func:`nnunetv2_alc.cli_runner.run_cli` turns it into a one-line CLI error.
"""


class InputDataError(Exception):
    """Input data or options are unusable: a missing or unreadable file, a wrong value, a clash."""
