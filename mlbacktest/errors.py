"""Exceptions raised by mlbacktest.

Every error raised because of user input derives from :class:`ValueError`, so
code that already guards against bad values keeps working; the subclasses let
callers tell bad data, bad orders and bad configuration apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "MlBacktestError",
    "DataError",
    "OrderError",
    "ConfigError",
    "ResultFileError",
    "NotBuiltError",
    "IndicatorError",
    "PortingError",
    "LookAheadWarning",
    "RejectedOrdersWarning",
    "suggest",
    "did_you_mean",
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


class IndicatorError(MlBacktestError, ValueError):
    """An indicator declaration is invalid (bad window, unknown input, duplicate name, ...).

    Raised where the indicator is declared, or at the latest before the first
    bar of the run (inputs, names and cycles are checked once the run's
    columns are known); a custom indicator that looks ahead is refused then.
    """


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


class PortingError(MlBacktestError, NotImplementedError):
    """A call of another engine's API that the porting assistants do not translate.

    Raised by :mod:`mlbacktest.compat` at the call itself, before anything
    runs with different behaviour. The message names the other engine's call
    and the mlbacktest way to do the same thing.
    """


class LookAheadWarning(UserWarning):
    """A configuration lets the simulation use information it could not have had."""


class RejectedOrdersWarning(UserWarning):
    """Most of a run's orders were rejected by the broker.

    Emitted once, at the end of :meth:`BacktestEngine.run
    <mlbacktest.BacktestEngine.run>` (and so of :func:`~mlbacktest.run_backtest`),
    when more than :data:`~mlbacktest.results.result.REJECTED_WARNING_FRACTION`
    (one half) of the orders ended rejected -- the usual sign of order sizes or
    costs given in the wrong unit (``order_target_percent(asset, 10)`` for
    10 %, ``commission=5`` for 5 bps). The message gives the count and the most
    frequent reasons. Silence it, or turn it into an error, with the
    :mod:`warnings` filters::

        warnings.filterwarnings("error", category=mlbacktest.RejectedOrdersWarning)
    """


def suggest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices closest to a misspelt `name`, best first.

    A choice equal to `name` but for case comes first; then the close
    matches by :func:`difflib.get_close_matches` (cutoff 0.6). The result
    depends only on the arguments (ties keep the order of `choices`).

    Parameters
    ----------
    name : str
        What was given (an asset, a column, a key).
    choices : iterable of str
        What exists.
    n : int, default 3
        At most this many suggestions.

    Returns
    -------
    list of str
        Up to `n` choices, empty when nothing is close.

    Examples
    --------
    >>> suggest("Close", ["open", "high", "low", "close"])
    ['close']
    >>> suggest("TSLA", ["AAPL", "MSFT", "TSL"])
    ['TSL']
    """
    options = [str(c) for c in choices]
    folded = name.casefold()
    out = [c for c in options if c != name and c.casefold() == folded]
    for c in difflib.get_close_matches(name, options, n=n + len(out), cutoff=0.6):
        if c not in out and c != name:
            out.append(c)
    if len(out) < n:  # a case difference hides close matches: compare case-folded too
        by_fold = {c.casefold(): c for c in reversed(options)}
        for f in difflib.get_close_matches(folded, list(by_fold), n=n, cutoff=0.6):
            c = by_fold[f]
            if c not in out and c != name:
                out.append(c)
    return out[:n]


def did_you_mean(name: str, choices: Iterable[str], what: str = "", limit: int = 20) -> str:
    """A message tail for an unknown `name`: the close matches, then what is available.

    Meant for errors such as ``unknown asset 'TSLA'``: the strategy's name
    lookup, a missing column.

    Parameters
    ----------
    name : str
        The unknown name.
    choices : iterable of str
        The names that exist.
    what : str, optional
        What the choices are, in the plural (``"assets"``, ``"columns"``);
        ``"choices"`` when empty.
    limit : int, default 20
        At most this many available names are listed (then ``"... and N
        more"``).

    Returns
    -------
    str
        ``"did you mean 'TSL'? available assets: 'AAPL', 'MSFT', 'TSL'"``,
        without the did-you-mean part when nothing is close.

    Examples
    --------
    >>> did_you_mean("aapl", ["AAPL", "MSFT"], "assets")
    "did you mean 'AAPL'? available assets: 'AAPL', 'MSFT'"
    """
    options = sorted({str(c) for c in choices})
    close = suggest(name, options)
    listed = ", ".join(repr(c) for c in options[:limit])
    if len(options) > limit:
        listed += f", ... and {len(options) - limit:,d} more"
    label = what or "choices"
    tail = f"available {label}: {listed}" if options else f"no {label} are available"
    if close:
        return f"did you mean {' or '.join(repr(c) for c in close)}? {tail}"
    return tail
