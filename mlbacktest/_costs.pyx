# cython: language_level=3
"""Cost models: commissions, slippage and market impact.

Every built-in is a ``cdef`` class: when the broker calls ``compute`` /
``fill_price`` / ``record_fill`` on one, the call is a C function call with no
Python object involved. A Python subclass may override any of those
``cpdef`` methods; the broker's C-level call then dispatches to the Python
method. docs/costs.md states every formula and its units.

Units: quantities are signed (> 0 buys), prices are in the account currency
per unit, bar volume is in units traded during the bar, timestamps are int64
nanoseconds since the epoch (UTC instants, or naive wall-clock time).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport INFINITY, NAN, exp2, fabs, fmax, fmin, isfinite, isnan, pow, sqrt
from libc.stdint cimport INT64_MIN, int64_t

from mlbacktest._typedefs cimport MLB_NO_TS

import datetime as _dt
import math
import numbers

import numpy as np

from mlbacktest.errors import ConfigError

__all__ = [
    "ColumnSource",
    "CommissionModel",
    "PercentageCommission",
    "PerShareCommission",
    "FixedCommission",
    "TieredCommission",
    "SlippageModel",
    "FixedBpsSlippage",
    "HalfSpreadSlippage",
    "LinearImpact",
    "SquareRootImpact",
    "AlmgrenChrissImpact",
    "COMMISSION_MODELS",
    "SLIPPAGE_MODELS",
]

cdef double NS_PER_SECOND = 1e9
cdef int64_t NS_PER_DAY = 86_400_000_000_000


# ================================================================ helpers
cdef inline double participation(qty_t quantity, double bar_volume) noexcept nogil:
    """``|q| / V``; NaN when the bar has no volume (V <= 0 or NaN)."""
    if bar_volume > 0.0:
        return fabs(quantity) / bar_volume
    return NAN


cdef int64_t month_index(ts_t ts) noexcept nogil:
    """Calendar month of a ns timestamp as ``12 * year + (month - 1)``.

    The timestamp is read as UTC (or naive wall-clock) time; days are civil
    days of the proleptic Gregorian calendar (H. Hinnant's ``civil_from_days``).
    """
    cdef int64_t days = ts // NS_PER_DAY           # truncates (cdivision): floor it
    if ts < 0 and days * NS_PER_DAY != ts:
        days -= 1
    cdef int64_t z = days + 719468
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t y = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int64_t m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return 12 * y + (m - 1)


def _month_index(ts_t ts):
    """Python access to :c:func:`month_index` (for tests)."""
    return month_index(ts)


def _number(name, value, *, allow_inf=False, positive=False):
    """``value`` as a float >= 0 (> 0 with ``positive``); ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if positive and not v > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    if v < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return v


def _bps(name, value):
    v = _number(name, value)
    if v >= 10_000:
        raise ConfigError(f"{name} of {v} bps would move sell prices to <= 0 (must be < 10000)")
    return v


def _column_name(name, value, *, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty column name, got {value!r}")
    return value


def _rebuild(cls, kwargs):
    """Unpickle a built-in model from its parameters."""
    return cls(**kwargs)


def _rebuild_subclass(cls, base, kwargs):
    """Unpickle a Python subclass: base parameters here, ``__dict__`` by pickle."""
    obj = cls.__new__(cls)
    base.__init__(obj, **kwargs)
    return obj


def _registered_base(obj, registry):
    """The nearest built-in class of ``obj`` (itself for a built-in)."""
    for klass in type(obj).__mro__:
        if klass in registry:
            return klass
    raise TypeError(f"{type(obj).__name__} derives from no built-in cost model")


def _model_repr(obj, params):
    args = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{type(obj).__name__}({args})"


# ================================================================ extra columns
cdef class ColumnSource:
    """Named float64 columns with one value per bar row, for cost models.

    The engine builds one per run from the feed's extra numeric columns
    (for instance ``bid`` and ``ask``), row-aligned with its ``BarStore``, and
    hands it to :meth:`SlippageModel.reset`. Models resolve the column names
    they need to ids once, then read values with the C method
    ``column(name_id, row)``; Python code uses :meth:`value`.

    Parameters
    ----------
    columns : mapping of str to array_like, optional
        Column name to a 1-D array of floats; every array has the same length.
        Arrays are converted to read-only C-contiguous float64 (without a copy
        when they already are).
    n_rows : int, optional
        Number of rows, required only when ``columns`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> cols = ColumnSource({"bid": np.array([9.9, 10.0]), "ask": np.array([10.1, 10.2])})
    >>> cols.value("ask", 1)
    10.2
    """

    def __cinit__(self, *args, **kwargs):
        self._data = NULL

    def __init__(self, columns=None, n_rows=None):
        cdef const double[::1] view
        cdef Py_ssize_t j
        columns = {} if columns is None else dict(columns)
        names = tuple(columns)
        arrays = []
        for name in names:
            if not isinstance(name, str):
                raise ConfigError(f"column names must be strings, got {name!r}")
            arr = np.ascontiguousarray(columns[name], dtype=np.float64)
            if arr.ndim != 1:
                raise ConfigError(f"column {name!r} must be 1-D, got shape {arr.shape}")
            if arr.flags.writeable:
                arr = arr.view()
                arr.flags.writeable = False
            arrays.append(arr)
        if arrays:
            n = arrays[0].shape[0]
            for name, arr in zip(names, arrays):
                if arr.shape[0] != n:
                    raise ConfigError(
                        f"column {name!r} has {arr.shape[0]} rows, "
                        f"column {names[0]!r} has {n}")
            if n_rows is not None and n_rows != n:
                raise ConfigError(f"n_rows is {n_rows} but the columns have {n} rows")
        else:
            n = 0 if n_rows is None else n_rows
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
                raise ConfigError(f"n_rows must be an integer >= 0, got {n_rows!r}")
        self.names = names
        self.index = {name: j for j, name in enumerate(names)}
        self.n_rows = int(n)
        self.n_columns = len(arrays)
        self._arrays = arrays
        self._data = <const double**> PyMem_Malloc(max(len(arrays), 1) * sizeof(double*))
        if self._data == NULL:
            raise MemoryError()
        for j in range(len(arrays)):
            if self.n_rows == 0:
                self._data[j] = NULL
            else:
                view = arrays[j]
                self._data[j] = &view[0]

    def __dealloc__(self):
        PyMem_Free(self._data)

    def rebind(self, columns):
        """Point the same named columns at new rows (the next chunk of a streamed run).

        Models keep the column ids they resolved in ``reset``.

        Parameters
        ----------
        columns : mapping of str to array_like
            A 1-D array for each of :attr:`names` (and no other), all of one length.
        """
        cdef const double[::1] view
        cdef Py_ssize_t j
        if set(columns) != set(self.names):
            raise ConfigError(f"rebind needs the columns {list(self.names)}, got {list(columns)}")
        fresh = ColumnSource({name: columns[name] for name in self.names})
        if not self.names:
            return
        self._arrays = fresh._arrays
        self.n_rows = fresh.n_rows
        for j in range(self.n_columns):
            if self.n_rows == 0:
                self._data[j] = NULL
            else:
                view = self._arrays[j]
                self._data[j] = &view[0]

    cpdef int column_id(self, str name) except -2:
        """Id of column ``name``, or -1 when there is no such column."""
        return self.index.get(name, -1)

    cdef double column(self, int name_id, idx_t row) noexcept nogil:
        """Value of column ``name_id`` at bar ``row``; NaN for an unknown id or row."""
        if name_id < 0 or name_id >= self.n_columns or row < 0 or row >= self.n_rows:
            return NAN
        return self._data[name_id][row]

    def value(self, name, Py_ssize_t row):
        """Value of column ``name`` (a name or an id) at bar ``row``; NaN when absent."""
        cdef int cid = self.column_id(name) if isinstance(name, str) else name
        return self.column(cid, row)

    def array(self, str name):
        """The read-only float64 array of column ``name``."""
        try:
            return self._arrays[self.index[name]]
        except KeyError:
            raise KeyError(f"no column {name!r}; columns are {list(self.names)}") from None

    def __contains__(self, name):
        return name in self.index

    def __len__(self):
        return len(self.names)

    def __repr__(self):
        return f"ColumnSource(names={list(self.names)!r}, n_rows={self.n_rows})"


# ================================================================ commissions
cdef inline double linear_commission(CommissionModel m, qty_t quantity, price_t price,
                                     double extra) noexcept nogil:
    """``clip(rate*|q|*p + per_share*|q| + fixed + extra, minimum, cap)``.

    ``cap = min(maximum, max_fraction*|q|*p)``; the cap wins over the minimum.
    The operations are ordered as in the original broker, so results are
    bit-identical to it.
    """
    cdef double q = fabs(quantity)
    cdef double c = m.rate * q * price + m.per_share * q + m.fixed
    if extra != 0.0:
        c += extra
    c = fmin(fmax(c, m.minimum), m.maximum)
    if m.max_fraction != INFINITY:
        c = fmin(c, m.max_fraction * q * price)
    return c


cdef class CommissionModel:
    """Commission charged on each fill; the base class of every commission model.

    Used directly it is the general linear schedule (every parameter
    defaults to no charge)::

        cap        = min(maximum, max_fraction * |q| * p)
        commission = min(max(rate*|q|*p + per_share*|q| + fixed, minimum), cap)

    for a fill of signed quantity ``q`` at price ``p`` (after slippage).

    To write your own model, subclass it in Python and override
    :meth:`compute` (and :meth:`record_fill` / :meth:`reset` if the model
    keeps state); the broker calls your methods for every fill.

    Parameters
    ----------
    rate : float
        Fraction of traded value (0.001 is 10 bps).
    per_share : float
        Currency per unit traded.
    fixed : float
        Currency per fill.
    minimum : float
        Smallest commission per fill, currency.
    maximum : float
        Largest commission per fill, currency (``inf``: no cap).
    max_fraction : float
        Largest commission per fill as a fraction of the traded value
        (``0.01`` caps it at 1 % of ``|q|*p``; ``inf``: no cap). Caps win
        over ``minimum``.

    Raises
    ------
    ConfigError
        A parameter is not a number >= 0, is infinite where it must be
        finite, or ``maximum < minimum``.
    """

    def __cinit__(self, *args, **kwargs):
        self.maximum = INFINITY
        self.max_fraction = INFINITY

    def __init__(self, rate=0.0, per_share=0.0, fixed=0.0, minimum=0.0,
                 maximum=math.inf, max_fraction=math.inf):
        self._set_linear(rate, per_share, fixed, minimum, maximum, max_fraction)

    def _set_linear(self, rate=0.0, per_share=0.0, fixed=0.0, minimum=0.0,
                    maximum=math.inf, max_fraction=math.inf):
        rate = _number("rate", rate)
        per_share = _number("per_share", per_share)
        fixed = _number("fixed", fixed)
        minimum = _number("minimum", minimum)
        maximum = _number("maximum", maximum, allow_inf=True)
        max_fraction = _number("max_fraction", max_fraction, allow_inf=True)
        if maximum < minimum:
            raise ConfigError(f"maximum ({maximum}) is below minimum ({minimum})")
        self.rate = rate
        self.per_share = per_share
        self.fixed = fixed
        self.minimum = minimum
        self.maximum = maximum
        self.max_fraction = max_fraction

    cpdef double compute(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except? -1:
        """Commission of one fill, in currency (>= 0).

        Parameters
        ----------
        asset : int
            Asset id.
        quantity : float
            Signed quantity filled (> 0 bought).
        price : float
            Fill price, slippage included.
        ts : int
            Timestamp of the fill, ns since the epoch.

        Returns
        -------
        float
            The commission. Must not change the model's state: the broker
            may compute a commission for a fill it then rejects.
        """
        return linear_commission(self, quantity, price, 0.0)

    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except *:
        """Update the model's state after a fill was booked (default: nothing).

        Called once per accepted fill, after :meth:`compute`, with the same
        arguments. The return value is ignored.
        """
        return

    cpdef void reset(self, int n_assets) except *:
        """Forget all state; the broker calls it once before a run's first fill."""
        return

    # ------------------------------------------------------------ Python side
    def _params(self):
        """Constructor keyword arguments of this model (hashable values)."""
        return {"rate": self.rate, "per_share": self.per_share, "fixed": self.fixed,
                "minimum": self.minimum, "maximum": self.maximum,
                "max_fraction": self.max_fraction}

    def _base_params(self):
        """Parameters of the nearest built-in class of ``self``."""
        return _registered_base(self, _COMMISSION_NAMES)._params(self)

    def to_config(self):
        """The model as a config table; :func:`mlbacktest.models.commission_from_config` inverts it.

        Raises
        ------
        ConfigError
            For a Python subclass, which has no table form.
        """
        return _model_to_config(self, _COMMISSION_NAMES)

    def __repr__(self):
        return _model_repr(self, self._base_params())

    def __eq__(self, other):
        return _model_eq(self, other, _COMMISSION_NAMES)

    def __hash__(self):
        return _model_hash(self, _COMMISSION_NAMES)

    def __reduce__(self):
        return _model_reduce(self, _COMMISSION_NAMES)


cdef class PercentageCommission(CommissionModel):
    """``rate`` times the traded value, clipped to ``[minimum, maximum]``.

    Parameters
    ----------
    rate : float
        Fraction of traded value (``0.001`` is 10 bps).
    minimum, maximum : float
        Floor and cap per fill, currency.
    """

    def __init__(self, rate, minimum=0.0, maximum=math.inf):
        self._set_linear(rate=rate, minimum=minimum, maximum=maximum)

    def _params(self):
        return {"rate": self.rate, "minimum": self.minimum, "maximum": self.maximum}


cdef class PerShareCommission(CommissionModel):
    """``per_share`` per unit traded, IB-style.

    ``commission = min(max(per_share*|q|, minimum), maximum, max_fraction*|q|*p)``;
    Interactive Brokers' fixed US-stock pricing is
    ``PerShareCommission(0.005, minimum=1.0, max_fraction=0.01)``.

    Parameters
    ----------
    per_share : float
        Currency per unit traded.
    minimum, maximum : float
        Floor and cap per fill, currency.
    max_fraction : float
        Cap per fill as a fraction of the traded value (wins over ``minimum``).
    """

    def __init__(self, per_share, minimum=0.0, maximum=math.inf, max_fraction=math.inf):
        self._set_linear(per_share=per_share, minimum=minimum, maximum=maximum,
                         max_fraction=max_fraction)

    def _params(self):
        return {"per_share": self.per_share, "minimum": self.minimum,
                "maximum": self.maximum, "max_fraction": self.max_fraction}


cdef class FixedCommission(CommissionModel):
    """A flat ``amount`` (currency) per fill.

    Parameters
    ----------
    amount : float
        Currency charged on every fill.
    """

    def __init__(self, amount):
        self._set_linear(fixed=_number("amount", amount))

    @property
    def amount(self):
        """Currency charged on every fill."""
        return self.fixed

    def _params(self):
        return {"amount": self.fixed}


cdef class TieredCommission(CommissionModel):
    """Tiers by the account's traded volume in the calendar month (IB "tiered").

    The month-to-date volume ``v`` counts every fill of the calendar month
    before this one, over all assets: units (``volume="shares"``) or
    currency value ``|q|*p`` (``volume="value"``). It starts again from 0 on
    the first fill of each month; months are calendar months of the fill's
    timestamp read as UTC (naive timestamps: wall-clock time). The tier is
    the last one whose ``from_volume <= v``, and the whole fill is charged at
    it::

        base       = tier_charge * |q|        (charge="per_share")
                   = tier_charge * |q| * p    (charge="rate")
        commission = min(max(base + fixed, minimum), maximum, max_fraction*|q|*p)

    Parameters
    ----------
    tiers : sequence of (from_volume, charge) pairs
        Ascending ``from_volume`` (shares or currency), the first 0;
        ``charge`` in the unit named by ``charge``.
    charge : {"per_share", "rate"}
        Tier charges are currency per unit, or fractions of traded value.
    volume : {"shares", "value"}
        What the monthly volume counts.
    fixed, minimum, maximum, max_fraction : float
        As in :class:`CommissionModel`.

    Examples
    --------
    Interactive Brokers' tiered US-stock schedule (commission part only):

    >>> ib = TieredCommission([(0, 0.0035), (300_000, 0.002), (3_000_000, 0.0015),
    ...                        (20_000_000, 0.001), (100_000_000, 0.0005)],
    ...                       minimum=0.35, max_fraction=0.01)
    """

    def __cinit__(self, *args, **kwargs):
        self._from = NULL
        self._charge = NULL
        self.n_tiers = 0
        self._month = INT64_MIN
        self._month_volume = 0.0

    def __init__(self, tiers, charge="per_share", volume="shares", fixed=0.0,
                 minimum=0.0, maximum=math.inf, max_fraction=math.inf):
        cdef int i
        if charge not in ("per_share", "rate"):
            raise ConfigError(f"charge must be 'per_share' or 'rate', got {charge!r}")
        if volume not in ("shares", "value"):
            raise ConfigError(f"volume must be 'shares' or 'value', got {volume!r}")
        if isinstance(tiers, (str, bytes)) or not hasattr(tiers, "__iter__"):
            raise ConfigError(f"tiers must be a sequence of (from_volume, charge) pairs, "
                              f"got {tiers!r}")
        parsed = []
        prev = -1.0
        for i, tier in enumerate(tiers):
            try:
                lo, ch = tier
            except (TypeError, ValueError):
                raise ConfigError(
                    f"tiers[{i}] must be a (from_volume, charge) pair, got {tier!r}") from None
            lo = _number(f"tiers[{i}] from_volume", lo)
            ch = _number(f"tiers[{i}] charge", ch)
            if parsed and not lo > prev:
                raise ConfigError(
                    f"tiers[{i}] from_volume ({lo}) must be above the previous tier's ({prev})")
            parsed.append((lo, ch))
            prev = lo
        if not parsed:
            raise ConfigError("tiers must hold at least one (from_volume, charge) pair")
        if parsed[0][0] != 0.0:
            raise ConfigError(f"tiers[0] from_volume must be 0, got {parsed[0][0]}")
        self._set_linear(fixed=fixed, minimum=minimum, maximum=maximum,
                         max_fraction=max_fraction)
        self.tiers = tuple(parsed)
        self.charge = charge
        self.volume = volume
        self._per_share = charge == "per_share"
        self._count_shares = volume == "shares"
        PyMem_Free(self._from)
        PyMem_Free(self._charge)
        self._from = <double*> PyMem_Malloc(len(parsed) * sizeof(double))
        self._charge = <double*> PyMem_Malloc(len(parsed) * sizeof(double))
        if self._from == NULL or self._charge == NULL:
            raise MemoryError()
        for i in range(len(parsed)):
            self._from[i] = parsed[i][0]
            self._charge[i] = parsed[i][1]
        self.n_tiers = len(parsed)
        self._month = INT64_MIN
        self._month_volume = 0.0

    def __dealloc__(self):
        PyMem_Free(self._from)
        PyMem_Free(self._charge)

    cdef double volume_before(self, ts_t ts) noexcept nogil:
        """Month-to-date volume that a fill at ``ts`` is priced with."""
        if month_index(ts) == self._month:
            return self._month_volume
        return 0.0

    cdef double tier_charge(self, double month_volume) noexcept nogil:
        """Charge of the tier that ``month_volume`` falls in."""
        cdef int i = self.n_tiers - 1
        if i < 0:
            return 0.0                  # not initialised (a subclass that skipped __init__)
        while i > 0 and self._from[i] > month_volume:
            i -= 1
        return self._charge[i]

    cpdef double compute(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except? -1:
        """Commission of one fill at the tier of the month-to-date volume (see the class)."""
        cdef double ch = self.tier_charge(self.volume_before(ts))
        cdef double q = fabs(quantity)
        cdef double base = ch * q if self._per_share else ch * q * price
        return linear_commission(self, quantity, price, base)

    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except *:
        """Add the fill to the month-to-date volume (starting a new month if needed)."""
        cdef int64_t m = month_index(ts)
        if m != self._month:
            self._month = m
            self._month_volume = 0.0
        if self._count_shares:
            self._month_volume += fabs(quantity)
        else:
            self._month_volume += fabs(quantity) * price
        return

    cpdef void reset(self, int n_assets) except *:
        """Forget the month-to-date volume."""
        self._month = INT64_MIN
        self._month_volume = 0.0
        return

    def month_volume(self, ts_t ts):
        """Month-to-date volume a fill at ``ts`` would be priced with (shares or currency)."""
        return self.volume_before(ts)

    def _params(self):
        return {"tiers": self.tiers, "charge": self.charge, "volume": self.volume,
                "fixed": self.fixed, "minimum": self.minimum, "maximum": self.maximum,
                "max_fraction": self.max_fraction}


# ================================================================ slippage and impact
cdef inline price_t moved(price_t raw, qty_t quantity, double move) noexcept nogil:
    """``raw`` moved against the order by the fraction ``move`` (written as the original broker did)."""
    if quantity > 0:
        return raw * (1.0 + move)
    return raw * (1.0 - move)


cdef class SlippageModel:
    """Fill price of an order; the base class of every slippage and impact model.

    Used directly it is fixed slippage: a buy fills at
    ``raw * (1 + bps/1e4)``, a sell at ``raw * (1 - bps/1e4)``, where
    ``raw`` is the price the fill rule gives (open, limit, stop or close).
    The broker caps a limit order's fill at its limit afterwards.

    To write your own model, subclass it in Python and override
    :meth:`fill_price` (and :meth:`record_fill` / :meth:`reset` if the
    model keeps state).

    Parameters
    ----------
    bps : float
        Basis points (1 bp = 0.01 %) moved against every fill, ``0 <= bps < 10000``.
        Every built-in subclass adds this fixed move to its own.

    Raises
    ------
    ConfigError
        ``bps`` is not a finite number in ``[0, 10000)``.
    """

    def __init__(self, bps=0.0):
        self._set_bps(bps)

    def _set_bps(self, bps):
        self.bps = _bps("bps", bps)
        self.frac = self.bps / 1e4

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """Price at which an order fills, slippage and impact included.

        Parameters
        ----------
        asset : int
            Asset id.
        quantity : float
            Signed quantity to fill (> 0 buys).
        raw_price : float
            Price given by the fill rule, before slippage.
        bar_volume : float
            Volume of the bar the order fills on (units).
        ts : int
            Timestamp of that bar, ns since the epoch.
        row : int
            Row of that bar in the run's columns (for :attr:`columns`);
            -1 when there is none.

        Returns
        -------
        float
            The fill price (> 0), or NaN when the order cannot fill on this
            bar (the order then stays open). Must not change the model's
            state: the broker may price a fill it then rejects.
        """
        return moved(raw_price, quantity, self.frac)

    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price,
                          double bar_volume, ts_t ts, idx_t row=-1) except *:
        """Update the model's state after a fill was booked (default: nothing).

        ``price`` is the booked price (after a limit cap); the other arguments
        are those given to :meth:`fill_price`. The return value is ignored.
        """
        return

    cpdef void reset(self, int n_assets, ColumnSource columns=None) except *:
        """Forget all state and bind the run's extra bar columns.

        The broker calls it once before the run's first fill. An override
        should call ``super().reset(n_assets, columns)``.

        Raises
        ------
        ConfigError
            A column the model needs is missing from ``columns``.
        """
        self.columns = columns
        return

    # ------------------------------------------------------------ Python side
    def _params(self):
        return {"bps": self.bps}

    def _base_params(self):
        return _registered_base(self, _SLIPPAGE_NAMES)._params(self)

    def to_config(self):
        """The model as a config table; :func:`mlbacktest.models.slippage_from_config` inverts it.

        Raises
        ------
        ConfigError
            For a Python subclass, which has no table form.
        """
        return _model_to_config(self, _SLIPPAGE_NAMES)

    def __repr__(self):
        return _model_repr(self, self._base_params())

    def __eq__(self, other):
        return _model_eq(self, other, _SLIPPAGE_NAMES)

    def __hash__(self):
        return _model_hash(self, _SLIPPAGE_NAMES)

    def __reduce__(self):
        return _model_reduce(self, _SLIPPAGE_NAMES)


cdef class FixedBpsSlippage(SlippageModel):
    """``bps`` basis points against every fill: buys pay ``raw*(1 + bps/1e4)``,
    sells receive ``raw*(1 - bps/1e4)``.

    Parameters
    ----------
    bps : float
        Basis points, ``0 <= bps < 10000``.
    """

    def __init__(self, bps):
        self._set_bps(bps)


cdef class HalfSpreadSlippage(SlippageModel):
    """Pay half the quoted spread: ``raw*(1 ± bps/1e4) ± max(ask - bid, 0) / 2``.

    ``+`` for buys, ``-`` for sells. ``bid`` and ``ask`` are read from the
    run's extra bar columns at the fill's bar; where either is NaN (or the
    fill has no bar row) the half-spread is ``raw * fallback_bps / 1e4``.

    Parameters
    ----------
    bid, ask : str
        Names of the bid and ask columns.
    fallback_bps : float
        Half-spread in bps of the price for a row without a quote.
    bps : float
        Fixed extra move, as in :class:`SlippageModel`.

    Raises
    ------
    ConfigError
        From :meth:`reset`, when the run has no such columns.
    """

    def __cinit__(self, *args, **kwargs):
        self._bid_id = -1
        self._ask_id = -1

    def __init__(self, bid="bid", ask="ask", fallback_bps=0.0, bps=0.0):
        self.bid = _column_name("bid", bid)
        self.ask = _column_name("ask", ask)
        self.fallback_bps = _bps("fallback_bps", fallback_bps)
        self._fallback = self.fallback_bps / 1e4
        self._set_bps(bps)

    cpdef void reset(self, int n_assets, ColumnSource columns=None) except *:
        """Bind the bid and ask columns; ConfigError when the run lacks them."""
        cdef int b = -1 if columns is None else columns.column_id(self.bid)
        cdef int a = -1 if columns is None else columns.column_id(self.ask)
        if b < 0 or a < 0:
            have = [] if columns is None else list(columns.names)
            missing = self.bid if b < 0 else self.ask
            raise ConfigError(
                f"HalfSpreadSlippage needs a {missing!r} bar column; the run's extra "
                f"columns are {have}")
        self.columns = columns
        self._bid_id = b
        self._ask_id = a
        return

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """Raw price moved by ``bps`` and half the quoted spread against the order."""
        cdef double bid = NAN, ask = NAN, half
        if self.columns is not None:
            bid = self.columns.column(self._bid_id, row)
            ask = self.columns.column(self._ask_id, row)
        if isnan(bid) or isnan(ask):
            half = raw_price * self._fallback
        else:
            half = fmax(ask - bid, 0.0) * 0.5
        if quantity > 0:
            return raw_price * (1.0 + self.frac) + half
        return raw_price * (1.0 - self.frac) - half

    def _params(self):
        return {"bid": self.bid, "ask": self.ask, "fallback_bps": self.fallback_bps,
                "bps": self.bps}


cdef class FixedAmountSlippage(SlippageModel):
    """A fixed amount of currency per unit against the order: ``raw*(1 ± bps/1e4) ± amount``.

    ``+`` for buys, ``-`` for sells (backtrader's ``set_slippage_fixed``).
    A sell whose price would reach zero or below cannot fill on that bar.

    Parameters
    ----------
    amount : float
        Currency per unit, >= 0.
    bps : float
        Fixed extra move, as in :class:`SlippageModel`.
    """

    def __init__(self, amount, bps=0.0):
        self.amount = _number("amount", amount)
        self._set_bps(bps)

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """Raw price moved by ``bps`` and ``amount`` against the order."""
        cdef double out
        if quantity > 0:
            return raw_price * (1.0 + self.frac) + self.amount
        out = raw_price * (1.0 - self.frac) - self.amount
        return out if out > 0.0 else NAN

    def _params(self):
        return {"amount": self.amount, "bps": self.bps}


cdef class LinearImpact(SlippageModel):
    """Impact linear in participation: ``raw * (1 ± (bps/1e4 + k * |q|/V))``.

    ``V`` is the volume of the bar the order fills on. On a bar without
    volume (``V <= 0``) the order does not fill (the model returns NaN).

    Parameters
    ----------
    k : float
        Fraction of the price moved per unit of participation ``|q|/V``
        (``k=0.1``: an order of 10 % of the bar's volume moves 1 %).
    bps : float
        Fixed extra move, as in :class:`SlippageModel`.
    """

    def __init__(self, k, bps=0.0):
        self.k = _number("k", k)
        self._set_bps(bps)

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """Raw price moved by ``bps/1e4 + k*|q|/V`` of itself against the order."""
        cdef double move = self.frac
        if self.k != 0.0:
            move = move + self.k * participation(quantity, bar_volume)
        return moved(raw_price, quantity, move)

    def _params(self):
        return {"k": self.k, "bps": self.bps}


cdef class SquareRootImpact(SlippageModel):
    """Square-root impact: ``raw * (1 ± (bps/1e4 + k * sigma * sqrt(|q|/V)))``.

    ``V`` is the volume of the bar the order fills on, ``sigma`` a volatility
    (fraction of price, same horizon as ``V``: daily volatility with daily
    bars). With ``sigma_column``, sigma is read from that bar column and the
    ``sigma`` parameter is used only where the column is NaN. With
    ``sigma=1`` and no column, ``k`` is the whole coefficient:
    ``k * sqrt(|q|/V)``. On a bar without volume the order does not fill.

    Parameters
    ----------
    k : float
        Dimensionless coefficient (empirically of order 0.5 to 1).
    sigma : float
        Volatility, fraction of price.
    sigma_column : str or None
        Name of a per-bar volatility column.
    bps : float
        Fixed extra move, as in :class:`SlippageModel`.
    """

    def __cinit__(self, *args, **kwargs):
        self._sigma_id = -1

    def __init__(self, k, sigma=1.0, sigma_column=None, bps=0.0):
        self.k = _number("k", k)
        self.sigma = _number("sigma", sigma)
        self.sigma_column = _column_name("sigma_column", sigma_column, optional=True)
        self._set_bps(bps)

    cpdef void reset(self, int n_assets, ColumnSource columns=None) except *:
        """Bind ``sigma_column``; ConfigError when the run lacks it."""
        self.columns = columns
        self._sigma_id = -1
        if self.sigma_column is not None:
            self._sigma_id = -1 if columns is None else columns.column_id(self.sigma_column)
            if self._sigma_id < 0:
                have = [] if columns is None else list(columns.names)
                raise ConfigError(
                    f"SquareRootImpact needs a {self.sigma_column!r} bar column; the run's "
                    f"extra columns are {have}")
        return

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """Raw price moved by ``bps/1e4 + k*sigma*sqrt(|q|/V)`` of itself against the order."""
        cdef double sigma = self.sigma, s = NAN
        cdef double move = self.frac
        if self._sigma_id >= 0 and self.columns is not None:
            s = self.columns.column(self._sigma_id, row)
            if not isnan(s):
                sigma = s
        if self.k != 0.0:
            move = move + self.k * sigma * sqrt(participation(quantity, bar_volume))
        return moved(raw_price, quantity, move)

    def _params(self):
        return {"k": self.k, "sigma": self.sigma, "sigma_column": self.sigma_column,
                "bps": self.bps}


cdef class AlmgrenChrissImpact(SlippageModel):
    """Temporary plus permanent impact, after Almgren and Chriss.

    With participation ``x = |q|/V`` (``V``: the bar's volume) and side
    ``s = +1`` for buys, ``-1`` for sells::

        temporary  = eta * x**beta                     (this fill only)
        fill price = raw * (1 + D[a] + s * (bps/1e4 + temporary))
        after the fill:  D[a] += s * gamma * x         (permanent, signed)

    ``D[a]`` is the asset's permanent offset, a signed fraction of the
    price that every later fill of the asset pays (buys push it up, sells
    down). With ``half_life``, the offset decays towards 0 between fills:
    at time ``t`` it is ``D[a] * 0.5 ** ((t - t_last) / half_life)``. On a
    bar without volume the order does not fill. The offset only moves
    fill prices, never the bars that trigger limit and stop orders.

    Parameters
    ----------
    eta : float
        Temporary impact coefficient, fraction of price.
    gamma : float
        Permanent impact per unit of participation, fraction of price.
    beta : float
        Exponent of participation in the temporary impact (> 0; 0.6 after
        Almgren, Thum, Hauptmann and Li, 2005; 1 is the linear original).
    half_life : float, datetime.timedelta or None
        Time for the permanent offset to halve, in seconds (or a timedelta);
        None: it never decays.
    bps : float
        Fixed extra move, as in :class:`SlippageModel`.
    """

    def __cinit__(self, *args, **kwargs):
        self._offset = NULL
        self._last_ts = NULL
        self._n_state = 0
        self._half_life_ns = INFINITY

    def __init__(self, eta, gamma, beta=0.6, half_life=None, bps=0.0):
        self.eta = _number("eta", eta)
        self.gamma = _number("gamma", gamma)
        self.beta = _number("beta", beta, positive=True)
        if half_life is None:
            self.half_life = None
            self._half_life_ns = INFINITY
        else:
            if isinstance(half_life, _dt.timedelta):
                half_life = half_life.total_seconds()
            elif isinstance(half_life, np.timedelta64):
                half_life = half_life / np.timedelta64(1, "ns") / NS_PER_SECOND
            self.half_life = _number("half_life", half_life, positive=True, allow_inf=True)
            self._half_life_ns = self.half_life * NS_PER_SECOND
        self._set_bps(bps)

    def __dealloc__(self):
        PyMem_Free(self._offset)
        PyMem_Free(self._last_ts)

    cdef int _grow(self, int n_assets) except -1:
        """Make room for the state of ``n_assets`` assets (new entries: no offset)."""
        cdef int i, n
        cdef double* off
        cdef ts_t* last
        if n_assets <= self._n_state:
            return 0
        n = max(n_assets, 2 * self._n_state)
        off = <double*> PyMem_Realloc(self._offset, n * sizeof(double))
        if off == NULL:
            raise MemoryError()
        self._offset = off
        last = <ts_t*> PyMem_Realloc(self._last_ts, n * sizeof(ts_t))
        if last == NULL:
            raise MemoryError()
        self._last_ts = last
        for i in range(self._n_state, n):
            self._offset[i] = 0.0
            self._last_ts[i] = MLB_NO_TS
        self._n_state = n
        return 0

    cdef double offset_at(self, asset_t asset, ts_t ts) noexcept nogil:
        """Permanent offset of ``asset`` at ``ts``, decayed since its last fill."""
        cdef double d, dt
        if asset < 0 or asset >= self._n_state:
            return 0.0
        d = self._offset[asset]
        if d == 0.0 or self._half_life_ns == INFINITY:
            return d
        dt = <double> (ts - self._last_ts[asset])
        if dt <= 0.0:
            return d
        return d * exp2(-dt / self._half_life_ns)

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=-1) except? -1:
        """``raw * (1 + D[a] + s*(bps/1e4 + eta*x**beta))``; NaN without bar volume."""
        cdef double x = participation(quantity, bar_volume)
        cdef double temp = 0.0
        cdef double side = 1.0 if quantity > 0 else -1.0
        if (self.eta != 0.0 or self.gamma != 0.0) and isnan(x):
            return NAN
        if self.eta != 0.0:
            temp = self.eta * pow(x, self.beta)
        return raw_price * (1.0 + self.offset_at(asset, ts) + side * (self.frac + temp))

    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price,
                          double bar_volume, ts_t ts, idx_t row=-1) except *:
        """Decay the asset's offset to ``ts`` and add ``s * gamma * |q|/V`` to it."""
        cdef double x, d
        cdef double side = 1.0 if quantity > 0 else -1.0
        if asset < 0:
            return
        if asset >= self._n_state:
            self._grow(asset + 1)
        d = self.offset_at(asset, ts)
        if self.gamma != 0.0:
            x = participation(quantity, bar_volume)
            if not isnan(x):
                d = d + side * self.gamma * x
        self._offset[asset] = d
        self._last_ts[asset] = ts
        return

    cpdef void reset(self, int n_assets, ColumnSource columns=None) except *:
        """Clear every asset's permanent offset."""
        cdef int i
        self.columns = columns
        self._grow(n_assets)
        for i in range(self._n_state):
            self._offset[i] = 0.0
            self._last_ts[i] = MLB_NO_TS
        return

    def offset(self, asset_t asset, ts=None):
        """Permanent offset of ``asset`` (signed fraction of price), decayed to ``ts`` if given."""
        if asset < 0 or asset >= self._n_state:
            return 0.0
        if ts is None:
            return self._offset[asset]
        return self.offset_at(asset, ts)

    def _params(self):
        return {"eta": self.eta, "gamma": self.gamma, "beta": self.beta,
                "half_life": self.half_life, "bps": self.bps}


# ================================================================ registry
def _plain(value):
    """Tuples (tiers) as lists, so tables are TOML/JSON friendly."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


#: Config-table name -> built-in commission class.
COMMISSION_MODELS = {
    "linear": CommissionModel,
    "percentage": PercentageCommission,
    "per_share": PerShareCommission,
    "fixed": FixedCommission,
    "tiered": TieredCommission,
}
#: Config-table name -> built-in slippage class.
SLIPPAGE_MODELS = {
    "bps": SlippageModel,
    "fixed_bps": FixedBpsSlippage,
    "half_spread": HalfSpreadSlippage,
    "fixed_amount": FixedAmountSlippage,
    "linear_impact": LinearImpact,
    "sqrt_impact": SquareRootImpact,
    "almgren_chriss": AlmgrenChrissImpact,
}
_COMMISSION_NAMES = {cls: name for name, cls in COMMISSION_MODELS.items()}
_SLIPPAGE_NAMES = {cls: name for name, cls in SLIPPAGE_MODELS.items()}


# ---------------------------------------------------------------- shared model protocol
# Built-in models (the classes registered by name) compare, hash, pickle and
# write config tables by their parameters; Python subclasses by identity.
def _model_to_config(model, names):
    name = names.get(type(model))
    if name is None:
        raise ConfigError(
            f"{type(model).__name__} is a Python subclass: it cannot be written as a table")
    return {"model": name, **{k: _plain(v) for k, v in model._params().items()
                              if v is not None}}


def _model_eq(model, other, names):
    if type(model) is not type(other):
        return NotImplemented
    if type(model) not in names:
        return model is other
    return model._params() == other._params()


def _model_hash(model, names):
    if type(model) not in names:
        return object.__hash__(model)
    return hash((type(model), tuple(model._params().items())))


def _model_reduce(model, names):
    base = _registered_base(model, names)
    if base is type(model):
        return (_rebuild, (base, model._params()))
    state = getattr(model, "__dict__", None)
    return (_rebuild_subclass, (type(model), base, base._params(model)), state)


# ================================================================ what the broker calls
cdef int _bad_commission(CommissionModel model, asset_t asset, qty_t quantity, price_t price,
                         ts_t ts, double value) except -1:
    raise ConfigError(
        f"{type(model).__name__}.compute returned {value!r} for asset {asset}, quantity "
        f"{quantity}, price {price} at ts {ts}: a commission must be a finite number >= 0")


cdef int _bad_price(SlippageModel model, asset_t asset, qty_t quantity, price_t raw_price,
                    ts_t ts, double value) except -1:
    raise ConfigError(
        f"{type(model).__name__}.fill_price returned {value!r} for asset {asset}, quantity "
        f"{quantity}, raw price {raw_price} at ts {ts}: a fill price must be a finite number "
        f"> 0 (or NaN for no fill)")


cdef double commission_for(CommissionModel model, asset_t asset, qty_t quantity,
                           price_t price, ts_t ts) except? -1:
    """``model.compute(...)`` through the C-level dispatch, checked to be finite and >= 0."""
    cdef double c = model.compute(asset, quantity, price, ts)
    if not (c >= 0.0 and c < INFINITY):
        _bad_commission(model, asset, quantity, price, ts, c)
    return c


cdef double slipped_price(SlippageModel model, asset_t asset, qty_t quantity, price_t raw_price,
                          double bar_volume, ts_t ts, idx_t row) except? -1:
    """``model.fill_price(...)`` through the C-level dispatch; NaN (no fill) or checked > 0 and finite."""
    cdef double p = model.fill_price(asset, quantity, raw_price, bar_volume, ts, row)
    if not (p > 0.0 and p < INFINITY) and not isnan(p):
        _bad_price(model, asset, quantity, raw_price, ts, p)
    return p


def _apply_commission(CommissionModel model, asset_t asset, qty_t quantity, price_t price,
                      ts_t ts):
    """Test helper: the commission as the broker gets it (C-level dispatch, checked)."""
    return commission_for(model, asset, quantity, price, ts)


def _apply_slippage(SlippageModel model, asset_t asset, qty_t quantity, price_t raw_price,
                    double bar_volume, ts_t ts, idx_t row=-1):
    """Test helper: the fill price as the broker gets it (C-level dispatch, checked)."""
    return slipped_price(model, asset, quantity, raw_price, bar_volume, ts, row)


def _record_fill(model, asset_t asset, qty_t quantity, price_t price, double bar_volume,
                 ts_t ts, idx_t row=-1):
    """Test helper: ``record_fill`` through the C-level dispatch, as the broker calls it."""
    if isinstance(model, CommissionModel):
        (<CommissionModel?> model).record_fill(asset, quantity, price, ts)
    else:
        (<SlippageModel?> model).record_fill(asset, quantity, price, bar_volume, ts, row)


def _reset(model, int n_assets, ColumnSource columns=None):
    """Test helper: ``reset`` through the C-level dispatch, as the broker calls it."""
    if isinstance(model, CommissionModel):
        (<CommissionModel?> model).reset(n_assets)
    else:
        (<SlippageModel?> model).reset(n_assets, columns)
