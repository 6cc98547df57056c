# cython: language_level=3
"""The order store and the matching loop of the simulated broker."""

from libc.stdint cimport int8_t, int32_t, int64_t

from mlbacktest._costs cimport ColumnSource, CommissionModel, SlippageModel
from mlbacktest._events cimport BarStore, FillC, OrderBook, OrderC, OrderLogC
from mlbacktest._fillrules cimport CandC
from mlbacktest._portfolio cimport Portfolio
from mlbacktest._typedefs cimport asset_t, code_t, idx_t, price_t, qty_t, ts_t

cdef class Broker(OrderBook):
    """Keeps working orders, matches them against bars and books the fills."""
    cdef Portfolio portfolio             # the account fills are booked into
    cdef idx_t* open_ids                 # ids of orders that may still be working, in id order (owned)
    cdef idx_t n_open                    # entries in open_ids
    cdef idx_t open_capacity             # allocated entries of open_ids
    cdef CandC* cands                    # scratch: orders that trigger on the current bars
    cdef idx_t* activated                # scratch: ids of orders released during this match
    cdef idx_t n_activated               # entries in activated
    cdef bint in_match                   # a matching pass is running (children released now join it)
    cdef bint has_expiring               # some DAY or GTD order was submitted
    cdef idx_t scratch_capacity          # allocated entries of cands and activated
    cdef FillC* fills                    # every fill of the run (owned, realloc'd)
    cdef readonly idx_t n_fills          # fills stored (since the last take_fills)
    cdef idx_t fill_capacity             # allocated fills
    cdef OrderLogC* log                  # status changes not yet handed to on_order (owned)
    cdef readonly idx_t n_log            # entries in log
    cdef idx_t log_capacity              # allocated log entries
    cdef readonly bint log_enabled       # record status changes (the strategy has on_order)
    cdef readonly object pending_market_array  # numpy float64 (n_assets,): unfilled qty of working market orders
    cdef double[::1] pending_market      # memoryview of pending_market_array
    cdef idx_t* row_of_asset             # scratch: row of each asset's bar at the current ts, -1 if none
    cdef double* volume_left             # scratch: volume each asset may still trade on the current bar
    cdef ts_t* stopped_ts                # per asset: timestamp of its last stop-out (same-bar re-entry rule)
    cdef int n_assets                    # number of assets
    cdef int64_t next_oco_group          # id for the next OCO group
    cdef readonly CommissionModel commission_model  # commission of each fill
    cdef readonly SlippageModel slippage_model      # fill price from the raw price
    cdef readonly bint fractional              # fractional quantities allowed
    cdef readonly bint allow_short             # fills may open or extend a short
    cdef readonly bint market_at_close         # market orders fill at the close of the decision bar
    cdef readonly bint market_next_close       # market orders fill at the close of the next bar
    cdef readonly int intrabar_path            # an IntrabarPath
    cdef readonly double volume_cap            # max fraction of a bar's volume one asset may trade (inf: none)
    cdef readonly bint reentry_same_bar        # entries may fill on the bar of a stop-out of the same asset
    cdef readonly bint children_same_bar       # OTO children work on the rest of the parent's fill bar
    # Accounts and risk.
    cdef readonly bint margin_account          # margin account (cash may go negative) instead of a cash account
    cdef readonly double initial_margin        # equity needed per unit of gross exposure to add exposure
    cdef readonly double maintenance_margin    # below equity / gross of this, a margin call liquidates
    cdef readonly double margin_rate           # annual interest rate on negative cash
    cdef double* borrow_rate                   # per asset: annual fee on the market value of a short
    cdef bint has_borrow                       # some borrow rate is non-zero
    cdef readonly double total_borrow_cost     # borrow fees charged so far
    cdef readonly double total_margin_interest # interest charged on negative cash so far
    cdef readonly int n_margin_calls           # margin calls so far
    cdef ts_t last_accrual_ts                  # fees are accrued up to this timestamp
    cdef readonly int max_positions            # max_open_positions (-1: no limit)
    cdef readonly int n_positions              # assets with a non-zero position
    cdef readonly double max_leverage          # max gross exposure / equity after a fill that adds exposure
    cdef readonly double max_drawdown          # drawdown from the equity peak that halts trading (NaN: never)
    cdef readonly bint halted                  # trading is halted: only exits fill
    cdef readonly ts_t halted_ts               # when trading was halted (MLB_NO_TS: never)
    cdef double peak_equity                    # highest equity seen at the end of a timestamp
    # Position rules, per asset; fractions of the entry (average) price, NaN when off.
    cdef bint has_rules                        # some asset has a rule
    cdef double* rule_stop_loss                # exit when price moves this fraction against the entry
    cdef double* rule_take_profit              # exit when price moves this fraction in favour of the entry
    cdef double* rule_trailing                 # exit when price falls this fraction from the best close since entry
    cdef int32_t* rule_max_bars                # exit after holding this many bars (0: off)
    cdef double* rule_peak                     # best close since the position opened (max long, min short)
    cdef int32_t* rule_bars                    # bars held since the position opened (entry bar included)
    cdef int64_t* rule_exit_order              # working time-exit order of the asset (-1: none)
    # External matching (a live run against a venue).
    cdef readonly bint external                # orders are never matched against bars: a venue fills them
    cdef list ext_queue                        # venue fills and status changes booked at the next timestamp

    cdef int64_t submit_order(self, OrderC* order, price_t reference_price,
                              bint activate_now=*) except -1
    cdef int validate(self, OrderC* order, price_t reference_price) except -1
    cdef bint cancel(self, int64_t order_id, ts_t ts, code_t reason) except -1
    cdef int end_order(self, OrderC* order, code_t status, code_t reason, ts_t ts) except -1
    cdef int activate(self, OrderC* order, ts_t ts) except -1
    cdef int accept_arrived(self, int64_t order_id, ts_t ts) except -1
    cdef int log_status(self, const OrderC* order, ts_t ts) except -1
    cdef idx_t match(self, BarStore store, const idx_t* starts, const idx_t* stops,
                     int n_ranges, ts_t ts, int phase) except -1
    cdef int run_candidates(self, BarStore store, idx_t n_cand, ts_t ts) except -1
    cdef int consider(self, OrderC* order, BarStore store, idx_t row, ts_t ts, int phase,
                      idx_t* n_cand) except -1
    cdef int execute(self, OrderC* order, BarStore store, idx_t row, const CandC* cand,
                     ts_t ts) except -1
    cdef int after_fill(self, OrderC* order, qty_t quantity, const CandC* cand,
                        ts_t ts) except -1
    cdef int add_fill(self, const FillC* fill) except -1
    cdef int note_model_error(self, object exc, object model, str method, ts_t ts,
                              asset_t asset) except -1
    cdef int reserve_scratch(self, idx_t n) except -1
    cdef int64_t link_pair(self, int64_t a, int64_t b) noexcept
    cdef int check_risk(self, OrderC* order, qty_t quantity, price_t price, double commission) except -1
    cdef int accrue(self, ts_t ts) except -1
    cdef idx_t scan_rules(self, BarStore store, const idx_t* starts, const idx_t* stops,
                          int n_ranges, ts_t ts, idx_t n_cand) except -1
    cdef int end_of_step(self, BarStore store, const idx_t* starts, const idx_t* stops,
                         int n_ranges, ts_t ts) except -1
    cdef idx_t book_external(self, ts_t ts) except -1
    cdef int64_t internal_order(self, asset_t asset, qty_t quantity, code_t order_type,
                                price_t limit_price, price_t stop_price, code_t origin,
                                ts_t ts) except -1
