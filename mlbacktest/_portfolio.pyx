# cython: language_level=3
"""Cash, positions and the per-timestamp equity record of one account.

Positions are netted per asset (a sell against a long reduces it, past zero
it becomes a short) and carried at average cost. Realized P&L is booked
against that average cost, before commissions; commissions and slippage are
tracked separately. Equity is ``cash + sum(position * last close)``.

A position whose residue after a fill is within :data:`QTY_RTOL` of the
quantities involved is snapped to exactly 0.0, so "flat" is ``position ==
0.0`` everywhere afterwards (docs/semantics.md, "Flat positions and whole
units").
"""

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.math cimport INFINITY, fabs, fmax, fmin, isfinite, isnan

from mlbacktest._typedefs cimport MLB_NO_TS

import numpy as np

#: Relative quantity tolerance of the run: a position residue at most this
#: fraction of the quantities it came from is flat (snapped to 0.0), and a
#: size this close (relative) to a whole number is that number.
QTY_RTOL = MLB_QTY_RTOL

#: The largest position, in units on either side, that a fill may leave: with
#: prices bounded by ``mlbacktest.data.validate.MAX_PRICE`` (1e15) a position's
#: value stays within 1e295, so no later mark can overflow float64. A fill that
#: would pass it is rejected as not representable.
MAX_POSITION = MLB_MAX_POSITION


def round_whole(double quantity):
    """``quantity`` in whole units toward zero, without losing a unit to float residue.

    Parameters
    ----------
    quantity : float
        A signed size.

    Returns
    -------
    float
        The whole number within :data:`QTY_RTOL` (relative) of ``quantity``
        if there is one (``48.99999999999999`` gives 49.0), else
        ``quantity`` truncated toward zero.
    """
    return whole_units(quantity)


def round_whole_array(quantities):
    """:func:`round_whole` of every element of a 1-d float64 array (a new array)."""
    out = np.array(quantities, dtype=np.float64, copy=True)
    if out.ndim != 1:
        raise ValueError(f"expected a 1-d array of quantities, got shape {out.shape}")
    cdef double[::1] v = out
    cdef Py_ssize_t i
    for i in range(v.shape[0]):
        v[i] = whole_units(v[i])
    return out


cdef class Portfolio:
    """Account state for one run.

    Parameters
    ----------
    n_assets : int
        Number of assets in the run.
    initial_cash : float
        Starting cash.
    n_steps_hint : int, optional
        Expected number of timestamps; the equity record is allocated once
        for this many rows (and grows if needed).
    """

    def __cinit__(self, int n_assets, double initial_cash, Py_ssize_t n_steps_hint=0):
        self.rec_ts = NULL
        self.rec_cash = NULL
        self.rec_value = NULL
        self.rec_gross = NULL
        self.n_records = 0
        self.rec_capacity = 0

    def __init__(self, int n_assets, double initial_cash, Py_ssize_t n_steps_hint=0):
        if n_assets < 0:
            raise ValueError(f"n_assets must be >= 0, got {n_assets}")
        if not isfinite(initial_cash):
            raise ValueError(f"initial_cash must be a finite number, got {initial_cash}")
        self.n_assets = n_assets
        self.cash = initial_cash
        self.initial_cash = initial_cash
        self.version = 0
        self.position_array = np.zeros(n_assets, dtype=np.float64)
        self.avg_cost_array = np.zeros(n_assets, dtype=np.float64)
        self.realized_array = np.zeros(n_assets, dtype=np.float64)
        self.last_price_array = np.full(n_assets, np.nan, dtype=np.float64)
        self.position = self.position_array
        self.avg_cost = self.avg_cost_array
        self.realized = self.realized_array
        self.last_price = self.last_price_array
        self.held_high = np.full(n_assets, -np.inf, dtype=np.float64)
        self.held_low = np.full(n_assets, np.inf, dtype=np.float64)
        self.last_fill_ts = np.full(n_assets, MLB_NO_TS, dtype=np.int64)
        self.total_commission = 0.0
        self.total_slippage = 0.0
        self.net_value = 0.0
        self.gross_value = 0.0
        self.reserve(max(n_steps_hint, 16))

    def __dealloc__(self):
        PyMem_Free(self.rec_ts)
        PyMem_Free(self.rec_cash)
        PyMem_Free(self.rec_value)
        PyMem_Free(self.rec_gross)

    cdef int reserve(self, idx_t n) except -1:
        """Make room for ``n`` equity rows in total."""
        cdef void* p
        if n <= self.rec_capacity:
            return 0
        p = PyMem_Realloc(self.rec_ts, n * sizeof(ts_t))
        if p == NULL:
            raise MemoryError()
        self.rec_ts = <ts_t*> p
        p = PyMem_Realloc(self.rec_cash, n * sizeof(double))
        if p == NULL:
            raise MemoryError()
        self.rec_cash = <double*> p
        p = PyMem_Realloc(self.rec_value, n * sizeof(double))
        if p == NULL:
            raise MemoryError()
        self.rec_value = <double*> p
        p = PyMem_Realloc(self.rec_gross, n * sizeof(double))
        if p == NULL:
            raise MemoryError()
        self.rec_gross = <double*> p
        self.rec_capacity = n
        return 0

    cdef void apply_fill(self, asset_t asset, qty_t quantity, price_t price,
                         double commission, double slippage) noexcept nogil:
        """Book a fill: move cash, update the position, its average cost and realized P&L.

        The running exposure totals move by the position's change valued at
        the asset's last price (the fill price before the asset's first close).
        """
        cdef double pos = self.position[asset]
        cdef double new_pos = pos + quantity
        cdef double closed, lp
        self.version += 1
        if new_pos != 0.0 and is_flat(new_pos, fmax(fabs(pos), fabs(quantity))):
            new_pos = 0.0  # float residue of a close (0.1 + 0.2 - 0.3): flat, exactly
        if isnan(self.last_price[asset]):
            self.last_price[asset] = price  # no close seen yet: the fill is the last trade
        lp = self.last_price[asset]
        self.net_value += new_pos * lp - pos * lp
        self.gross_value += fabs(new_pos * lp) - fabs(pos * lp)
        self.cash -= quantity * price + commission
        self.total_commission += commission
        self.total_slippage += slippage
        if pos == 0.0 or (pos > 0.0) == (quantity > 0.0):
            # Opening or adding: the average cost blends in the new price.
            self.avg_cost[asset] = (self.avg_cost[asset] * fabs(pos) + price * fabs(quantity)) / fabs(new_pos)
        else:
            closed = fmin(fabs(quantity), fabs(pos))
            if pos > 0.0:
                self.realized[asset] += closed * (price - self.avg_cost[asset])
            else:
                self.realized[asset] += closed * (self.avg_cost[asset] - price)
            if new_pos == 0.0:
                self.avg_cost[asset] = 0.0
            elif (new_pos > 0.0) != (pos > 0.0):
                # Reversed through zero: the remainder opened at this price.
                self.avg_cost[asset] = price
        self.position[asset] = new_pos

    cdef void mark(self, const asset_t[::1] asset, const double[::1] high,
                   const double[::1] low, const double[::1] close,
                   idx_t start, idx_t stop, ts_t ts, int64_t* last_row) noexcept nogil:
        """Take the closes of rows ``start:stop`` (stamped ``ts``) as the assets' last prices.

        ``last_row`` (n_assets entries, or NULL) receives each asset's row:
        the engine's latest row per asset, which ``Strategy.history`` ends at
        (set here, in the loop that reads the rows anyway).

        A bar of an asset held since before ``ts`` (no fill at ``ts`` yet)
        also widens the asset's held range, which the next fill records.
        """
        cdef idx_t i
        cdef asset_t a
        self.version += 1
        for i in range(start, stop):
            a = asset[i]
            self.last_price[a] = close[i]
            if last_row != NULL:
                last_row[a] = i
            if self.position[a] != 0.0 and self.last_fill_ts[a] != ts:
                self.held_high[a] = fmax(self.held_high[a], high[i])
                self.held_low[a] = fmin(self.held_low[a], low[i])

    cdef void close_segment(self, asset_t asset, ts_t ts, double* high, double* low) noexcept nogil:
        """Hand over the asset's held range before a fill at ``ts``, and start a new one."""
        high[0] = self.held_high[asset]
        low[0] = self.held_low[asset]
        self.held_high[asset] = -INFINITY
        self.held_low[asset] = INFINITY
        self.last_fill_ts[asset] = ts

    cdef void exposures(self, double* value, double* gross) noexcept nogil:
        """Net and gross market value of the positions at the last prices."""
        cdef double v = 0.0, g = 0.0, mv, q
        cdef int a
        for a in range(self.n_assets):
            q = self.position[a]
            if q != 0.0:
                mv = q * self.last_price[a]
                v += mv
                g += fabs(mv)
        value[0] = v
        gross[0] = g

    cdef void sync_exposures(self) noexcept nogil:
        """Set the running totals to a full recomputation (after the last prices moved)."""
        self.exposures(&self.net_value, &self.gross_value)

    cdef int record(self, ts_t ts) except -1:
        """Append one equity row for timestamp ``ts`` (and resynchronise the running totals)."""
        cdef idx_t i = self.n_records
        if i == self.rec_capacity:
            self.reserve(2 * self.rec_capacity)
        self.sync_exposures()
        self.rec_ts[i] = ts
        self.rec_cash[i] = self.cash
        self.rec_value[i] = self.net_value
        self.rec_gross[i] = self.gross_value
        self.n_records = i + 1
        return 0

    # ------------------------------------------------------------ Python side
    def equity(self):
        """Cash plus the market value of every position at its last price."""
        cdef double value, gross
        self.exposures(&value, &gross)
        return self.cash + value

    def exposures_now(self):
        """``(net, gross)`` market value of the positions, recomputed over every asset.

        :attr:`net_value` and :attr:`gross_value` are the running totals the
        broker's risk checks read; they equal this after every equity record.
        """
        cdef double value, gross
        self.exposures(&value, &gross)
        return value, gross

    def recompute_exposures(self):
        """Set :attr:`net_value` and :attr:`gross_value` to :meth:`exposures_now`."""
        self.sync_exposures()

    def book(self, int asset, double quantity, double price, double commission=0.0):
        """Book one fill into the ledger, as the broker does (for tools and tests).

        A run books its fills through the broker, which checks them first;
        this only checks that the values can be booked.

        Parameters
        ----------
        asset : int
            Asset id in ``[0, n_assets)``.
        quantity : float
            Signed, finite, non-zero quantity.
        price, commission : float
            Finite fill price (> 0) and commission (>= 0).
        """
        if not 0 <= asset < self.n_assets:
            raise IndexError(f"asset id {asset} out of range: the portfolio has "
                             f"{self.n_assets} assets")
        if not (isfinite(quantity) and quantity != 0.0):
            raise ValueError(f"quantity must be a finite non-zero number, got {quantity}")
        if not (isfinite(price) and price > 0.0):
            raise ValueError(f"price must be a finite number > 0, got {price}")
        if not (isfinite(commission) and commission >= 0.0):
            raise ValueError(f"commission must be a finite number >= 0, got {commission}")
        self.apply_fill(asset, quantity, price, commission, 0.0)

    def unrealized_pnl(self, int asset):
        """Unrealized P&L of one asset against its average cost (0.0 when flat)."""
        if not 0 <= asset < self.n_assets:
            raise IndexError(f"asset id {asset} out of range: the portfolio has "
                             f"{self.n_assets} assets")
        cdef double q = self.position[asset]
        if q == 0.0:
            return 0.0
        return q * (self.last_price[asset] - self.avg_cost[asset])

    def take_records(self):
        """Hand over the equity rows recorded so far (as :meth:`record_arrays`) and forget them.

        Used to write results while a run goes on; the next row is then the first.
        """
        out = self.record_arrays()
        self.n_records = 0
        return out

    def record_arrays(self):
        """Copy the equity record into numpy arrays."""
        cdef idx_t n = self.n_records
        ts = np.empty(n, dtype=np.int64)
        cash = np.empty(n, dtype=np.float64)
        value = np.empty(n, dtype=np.float64)
        gross = np.empty(n, dtype=np.float64)
        cdef ts_t[::1] tv = ts
        cdef double[::1] cv = cash, vv = value, gv = gross
        cdef idx_t i
        for i in range(n):
            tv[i] = self.rec_ts[i]
            cv[i] = self.rec_cash[i]
            vv[i] = self.rec_value[i]
            gv[i] = self.rec_gross[i]
        return {
            "ts": ts,
            "cash": cash,
            "positions_value": value,
            "equity": cash + value,
            "gross_exposure": gross,
            "net_exposure": value.copy(),
        }
