"""Exceptions raised by mlbacktest.

Every error raised because of user input derives from :class:`ValueError`, so
code that already guards against bad values keeps working; the subclasses let
callers tell bad data, bad orders and bad configuration apart.
"""

from __future__ import annotations

__all__ = [
    "MlBacktestError",
    "DataError",
    "OrderError",
    "ConfigError",
    "ResultFileError",
    "NotBuiltError",
    "LookAheadWarning",
]


class MlBacktestError(Exception):
    """Base class of every exception defined by mlbacktest."""


class DataError(MlBacktestError, ValueError):
    """Input data is malformed.

    Raised while a feed is built, before any simulation starts. The message
    names the offending column and, where the problem is in a row, the row
    number in the input, the asset and the timestamp.
    """


class OrderError(MlBacktestError, ValueError):
    """An order cannot be accepted as written (unknown asset, NaN quantity, ...).

    Raised at the call that submits the order, inside the strategy hook.
    """


class ConfigError(MlBacktestError, ValueError):
    """A configuration value or key is invalid; raised before the run starts."""


class ResultFileError(MlBacktestError, ValueError):
    """A saved result (``result.json`` or one of its parquet files) is corrupt or tampered with.

    Raised by :meth:`BacktestResult.from_parquet` (and ``mlbacktest report``)
    before anything is computed from the files. The message names the file
    and the field, and for a bad value its first row.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str, optional
        The file.
    field : str, optional
        The ``result.json`` entry or parquet column.
    """

    def __init__(self, message: str, path: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.field = field


class NotBuiltError(MlBacktestError, ImportError):
    """The compiled extension modules of mlbacktest are missing or belong to another copy.

    Raised at ``import mlbacktest``. The message names the extension module
    (also in :attr:`name`) and the directory it was expected in or found in
    (:attr:`path`): a copy of the sources that was never built, imported
    beside another installed copy, would otherwise run on the other copy's
    compiled modules.
    """


class LookAheadWarning(UserWarning):
    """A configuration lets the simulation use information it could not have had."""
