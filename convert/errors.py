"""The conversion stage's one error type, apart from the modules that raise it (quantize and
verify use each other's results, and both raise it)."""


class ConvertError(Exception):
    """Bad conversion input (file, model, metadata, data); the message says what to do."""
