"""Exceptions that the CLI turns into one-line errors.

`UsageError` (exit 2) is bad input or usage: the user can fix it by changing
the command or the files. `SynthmedError` (exit 1) is a failure at run time.
"""


class SynthmedError(Exception):
    """A failure at run time; the CLI prints `synthmed: error: <message>` and exits 1."""

    exit_code = 1


class UsageError(SynthmedError):
    """Bad input or usage; exit 2."""

    exit_code = 2


class DatasetError(UsageError):
    """A dataset folder breaks the dataset contract (synthmed.data.schema, docs/dataset.md)."""


class UnknownNameError(UsageError):
    """A plugin-provided name (generator, classifier, policy, ...) that nothing registered."""
