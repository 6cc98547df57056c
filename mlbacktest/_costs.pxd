# cython: language_level=3
"""Cost models: commissions, slippage and market impact.

The built-in models are ``cdef`` classes whose ``cpdef`` methods run as plain
C when called from the broker; a Python subclass overrides any of them and the
broker's C-level call then dispatches to the Python method. See docs/costs.md
for every formula.
"""

from libc.stdint cimport int64_t

from mlbacktest._typedefs cimport asset_t, idx_t, price_t, qty_t, ts_t


# ---------------------------------------------------------------- extra bar columns
cdef class ColumnSource:
    """Named float64 per-bar columns (bid, ask, volatility, ...) indexed by bar row."""
    cdef readonly tuple names            # column id -> column name
    cdef readonly dict index             # column name -> column id
    cdef readonly Py_ssize_t n_rows      # length of every column (rows of the run's BarStore)
    cdef readonly int n_columns          # number of columns
    cdef list _arrays                    # the read-only float64 arrays; keeps ``_data`` valid
    cdef const double** _data            # column id -> pointer to the column's first value (owned table)

    cpdef int column_id(self, str name) except -2
    cdef double column(self, int name_id, idx_t row) noexcept nogil


# ---------------------------------------------------------------- commissions
cdef class CommissionModel:
    """Commission per fill; the base formula, shared by the linear built-ins, is
    ``clip(rate*|q|*p + per_share*|q| + fixed, minimum, min(maximum, max_fraction*|q|*p))``."""
    cdef readonly double rate            # fraction of traded value (0.001 = 10 bps)
    cdef readonly double per_share       # currency per unit traded
    cdef readonly double fixed           # currency per fill
    cdef readonly double minimum         # floor per fill, currency
    cdef readonly double maximum         # cap per fill, currency (inf: no cap)
    cdef readonly double max_fraction    # cap per fill as a fraction of traded value (inf: no cap)

    cpdef double compute(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except? -1
    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price, ts_t ts) except *
    cpdef void reset(self, int n_assets) except *


cdef class PercentageCommission(CommissionModel):
    """``rate`` times the traded value, clipped to [minimum, maximum]."""
    pass


cdef class PerShareCommission(CommissionModel):
    """``per_share`` per unit, clipped to [minimum, min(maximum, max_fraction * value)]."""
    pass


cdef class FixedCommission(CommissionModel):
    """A flat amount per fill."""
    pass


cdef class TieredCommission(CommissionModel):
    """Per-share or rate tiers chosen by the account's month-to-date traded volume."""
    cdef readonly tuple tiers            # ((from_volume, charge), ...) ascending, first from_volume == 0
    cdef readonly str charge             # "per_share": charge is currency per unit; "rate": fraction of value
    cdef readonly str volume             # "shares": monthly volume counts |q|; "value": counts |q|*p
    cdef double* _from                   # tier lower bounds (inclusive), ascending (owned, n_tiers)
    cdef double* _charge                 # charge of each tier, in the unit named by ``charge`` (owned, n_tiers)
    cdef int n_tiers                     # entries of _from and _charge
    cdef bint _per_share                 # charge == "per_share"
    cdef bint _count_shares              # volume == "shares"
    cdef int64_t _month                  # month index (12*year + month - 1) of _month_volume; INT64_MIN: none yet
    cdef double _month_volume            # volume traded in _month so far (shares or currency)

    cdef double volume_before(self, ts_t ts) noexcept nogil
    cdef double tier_charge(self, double month_volume) noexcept nogil


# ---------------------------------------------------------------- slippage and impact
cdef class SlippageModel:
    """Fill price of an order; the base formula moves the price against the order by ``bps``."""
    cdef readonly double bps             # fixed move against the order, basis points of the price
    cdef double frac                     # bps / 1e4
    cdef readonly ColumnSource columns   # extra bar columns bound by reset(); None when the run has none

    cpdef double fill_price(self, asset_t asset, qty_t quantity, price_t raw_price,
                            double bar_volume, ts_t ts, idx_t row=*) except? -1
    cpdef void record_fill(self, asset_t asset, qty_t quantity, price_t price,
                          double bar_volume, ts_t ts, idx_t row=*) except *
    cpdef void reset(self, int n_assets, ColumnSource columns=*) except *


cdef class FixedBpsSlippage(SlippageModel):
    """``bps`` basis points against every fill (the base formula, under its own name)."""
    pass


cdef class FixedAmountSlippage(SlippageModel):
    """A fixed amount of currency per unit against the order."""
    cdef readonly double amount          # currency per unit, >= 0


cdef class HalfSpreadSlippage(SlippageModel):
    """Half the quoted spread (ask - bid) / 2 against the order, read from two bar columns."""
    cdef readonly str bid                # name of the bid column
    cdef readonly str ask                # name of the ask column
    cdef readonly double fallback_bps    # half-spread, in bps of the price, for a row without a quote
    cdef double _fallback                # fallback_bps / 1e4
    cdef int _bid_id                     # id of the bid column in ``columns``; -1 when unbound
    cdef int _ask_id                     # id of the ask column in ``columns``; -1 when unbound


cdef class LinearImpact(SlippageModel):
    """Impact proportional to participation: move = k * |q| / bar_volume (fraction of price)."""
    cdef readonly double k               # fraction of price moved per unit of participation


cdef class SquareRootImpact(SlippageModel):
    """Square-root impact: move = k * sigma * sqrt(|q| / bar_volume) (fraction of price)."""
    cdef readonly double k               # dimensionless coefficient (often 0.5 .. 1)
    cdef readonly double sigma           # volatility, fraction of price; used where sigma_column has no value
    cdef readonly str sigma_column       # name of a per-bar volatility column, or None
    cdef int _sigma_id                   # id of sigma_column in ``columns``; -1 when unbound


cdef class AlmgrenChrissImpact(SlippageModel):
    """Temporary eta*(|q|/V)**beta on this fill plus a permanent, optionally decaying,
    per-asset offset that each fill moves by gamma*|q|/V."""
    cdef readonly double eta             # temporary impact coefficient (fraction of price)
    cdef readonly double beta            # exponent of participation in the temporary impact
    cdef readonly double gamma           # permanent impact per unit of participation (fraction of price)
    cdef readonly object half_life       # seconds for the permanent offset to halve; None: never decays
    cdef double _half_life_ns            # half_life in ns; inf when it never decays
    cdef double* _offset                 # per asset: signed permanent offset (fraction of price) at _last_ts (owned)
    cdef ts_t* _last_ts                  # per asset: timestamp _offset refers to (owned)
    cdef int _n_state                    # assets allocated in _offset/_last_ts

    cdef double offset_at(self, asset_t asset, ts_t ts) noexcept nogil
    cdef int _grow(self, int n_assets) except -1


# ---------------------------------------------------------------- what the broker calls
cdef int64_t month_index(ts_t ts) noexcept nogil
cdef double commission_for(CommissionModel model, asset_t asset, qty_t quantity,
                           price_t price, ts_t ts) except? -1
cdef double slipped_price(SlippageModel model, asset_t asset, qty_t quantity, price_t raw_price,
                          double bar_volume, ts_t ts, idx_t row) except? -1
