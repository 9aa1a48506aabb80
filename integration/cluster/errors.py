"""The exceptions whose message is shown to the user as a single line (no traceback)."""

from ir.beir import DatasetError


class SesaError(RuntimeError):
    """A failure with a message that says what happened and what to do."""


# What the `sesa` commands print as one line: our own errors and a malformed dataset folder.
USER_ERRORS = (SesaError, DatasetError)
