"""One exception hierarchy for the library; serving maps these to HTTP statuses."""

from __future__ import annotations


class RecsysError(Exception):
    """Base class of every domain error raised by loyalty-recsys."""


class DataError(RecsysError):
    """Input data is malformed: missing columns, bad dates, wrong types.

    ``problems`` lists row-level reasons as ``(file, row, column, message)``.
    """

    def __init__(self, message: str, problems: list[tuple[str, int | None, str | None, str]]
                 | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class NotFittedError(RecsysError):
    """A model was asked to predict before ``fit`` or ``from_state``."""


class BundleError(RecsysError):
    """A model bundle is missing, corrupt, truncated or of an unsupported schema version."""


class UnknownIdError(RecsysError, KeyError):
    """An external id (customer, product, coupon) is not known to the model."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the sentence.
        return str(self.args[0]) if self.args else "unknown id"


class ConfigError(RecsysError):
    """A configuration file (training, policy, coupon catalog) is invalid."""


__all__ = ["RecsysError", "DataError", "NotFittedError", "BundleError", "UnknownIdError",
           "ConfigError"]
