"""``bt.feeds``: data feeds from a pandas or polars frame, or a CSV file."""

from __future__ import annotations

from typing import Any

import polars as pl

from mlbacktest.errors import PortingError

from ._core import DataFeed

__all__ = ["PandasData", "PolarsData", "GenericCSVData", "BacktraderCSVData"]

_COLS = ("open", "high", "low", "close", "volume")


def _finish(frame: pl.DataFrame, what: str, name: str, kwargs: dict[str, Any]) -> DataFeed:
    fromdate, todate = kwargs.pop("fromdate", None), kwargs.pop("todate", None)
    for k in ("timeframe", "compression", "openinterest"):
        kwargs.pop(k, None)
    if kwargs:
        raise PortingError(f"{what} parameter(s) {sorted(kwargs)} are not supported by "
                           "mlbacktest.compat.backtrader; supported: dataname, name, fromdate, "
                           "todate and the column names")
    missing = [c for c in ("timestamp", *_COLS) if c not in frame.columns]
    if missing:
        raise PortingError(f"{what}: no column for {missing}; columns are {frame.columns}")
    frame = frame.select(pl.col("timestamp").cast(pl.Datetime("ns")),
                         *(pl.col(c).cast(pl.Float64) for c in _COLS)).sort("timestamp")
    return DataFeed(frame, name, fromdate, todate)


def _pick(columns: list[str], want: Any, field: str) -> str | None:
    if want is None:
        return None
    if isinstance(want, int) and not isinstance(want, bool):
        if want == -1:  # autodetect by name
            for c in columns:
                if c.lower() == field:
                    return c
            return None
        return columns[want]
    return str(want)


def PandasData(dataname: Any, name: str = "", datetime: Any = None,  # noqa: N802
               open: Any = -1, high: Any = -1, low: Any = -1, close: Any = -1,
               volume: Any = -1, **kwargs: Any) -> DataFeed:
    """A pandas DataFrame: the index is the time (or ``datetime=`` names a column)."""
    import numpy as np

    df = dataname
    cols = [str(c) for c in df.columns]
    if datetime is None:
        times = np.asarray(df.index.to_numpy(), dtype="datetime64[ns]")
    else:
        tcol = df.columns[datetime] if isinstance(datetime, int) else datetime
        times = np.asarray(df[tcol].to_numpy(), dtype="datetime64[ns]")
    data: dict[str, Any] = {"timestamp": times}
    spec = dict(open=open, high=high, low=low, close=close, volume=volume)
    for field, want in spec.items():
        c = _pick(cols, want, field)
        if c is None:
            raise PortingError(f"PandasData: no {field!r} column in {cols}")
        data[field] = np.asarray(df[df.columns[cols.index(c)]].to_numpy(), dtype=np.float64)
    frame = pl.DataFrame(data)
    return _finish(frame, "PandasData", name, kwargs)


def PolarsData(dataname: pl.DataFrame, name: str = "", datetime: str = "datetime",  # noqa: N802
               **kwargs: Any) -> DataFeed:
    """A polars DataFrame with a ``datetime`` column and open, high, low, close, volume."""
    if datetime not in dataname.columns:
        raise PortingError(f"PolarsData: no time column {datetime!r} in {dataname.columns}")
    cols = {c: kwargs.pop(c, c) for c in _COLS}
    frame = dataname.select(pl.col(datetime).alias("timestamp"),
                            *(pl.col(src).alias(dst) for dst, src in cols.items()))
    return _finish(frame, "PolarsData", name, kwargs)


def GenericCSVData(dataname: str, name: str = "", dtformat: str = "%Y-%m-%d",  # noqa: N802
                   datetime: int = 0, open: int = 1, high: int = 2, low: int = 3,
                   close: int = 4, volume: int = 5, headers: bool = True,
                   separator: str = ",", **kwargs: Any) -> DataFeed:
    """A CSV file, columns by position (backtrader's defaults), times parsed with ``dtformat``."""
    kwargs.pop("nullvalue", None)
    kwargs.pop("time", None)
    raw = pl.read_csv(dataname, has_header=headers, separator=separator,
                      infer_schema_length=0)
    cols = raw.columns
    frame = raw.select(
        pl.col(cols[datetime]).str.strptime(pl.Datetime("ns"), dtformat).alias("timestamp"),
        *(pl.col(cols[i]).alias(f) for f, i in zip(
            _COLS, (open, high, low, close, volume), strict=True)))
    return _finish(frame, f"GenericCSVData({dataname!r})", name, kwargs)


def BacktraderCSVData(dataname: str, name: str = "", **kwargs: Any) -> DataFeed:  # noqa: N802
    """backtrader's own CSV layout: ``Date,Open,High,Low,Close,Volume,OpenInterest``."""
    return GenericCSVData(dataname, name=name, dtformat="%Y-%m-%d", **kwargs)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise PortingError(f"bt.feeds.{name} is not supported by mlbacktest.compat.backtrader; use "
                       "PandasData, PolarsData, GenericCSVData or BacktraderCSVData (natively, "
                       "mlbacktest.PolarsDataFeed / ParquetDataFeed)")
