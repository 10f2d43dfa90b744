"""The two ways a conversion step stops on purpose."""
from __future__ import annotations


class ConversionError(Exception):
    """The file's content cannot be converted by this converter (not retried)."""


class TaskGone(Exception):
    """The datafile was deleted, or its task replaced, while converting."""
