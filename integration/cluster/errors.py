"""One exception type whose message is shown to the user as a single line (no traceback)."""


class SesaError(RuntimeError):
    """A failure with a message that says what happened and what to do."""
