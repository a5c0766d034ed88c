"""The one exception type a user sees for bad input."""


class InputError(ValueError):
    """Bad user input: the message is one line naming the file, the field, the value
    and what was expected. Rule scripts let it propagate; no output is left behind
    because every writer is atomic."""
