"""zipline's own examples, unmodified, through the shim and through zipline-reloaded.

The example files are loaded from ``zipline/examples`` of the installed
zipline-reloaded (and two zipline-style algorithms from tests/compat/algos/).
Each runs twice on the same synthetic bars: once on real zipline-reloaded (from
a bundle registered from the test's frame, no network; in zipline's own
environment, see zipline_oracle.py) and once on mlbacktest through
``mlbacktest.compat.zipline``. Every transaction (date, asset, amount, price),
every order's final state (creation date, asset, amount, filled, commission,
status), the daily positions (amount, cost basis, last sale price), the daily
portfolio_value and cash, and the recorded variables agree to 1e-9 relative.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import zipline_oracle as oracle  # noqa: E402

from mlbacktest.compat.zipline import load_algorithm, run_algorithm  # noqa: E402

if oracle.oracle_python() is None:  # pragma: no cover - the oracle environment is set up in CI
    pytest.skip("no zipline-reloaded environment: python -m venv .zipline-venv && "
                ".zipline-venv/bin/pip install zipline-reloaded==3.2.1 (or set "
                "MLBT_ZIPLINE_PYTHON)", allow_module_level=True)

START, END = "2012-01-03", "2014-12-31"
SYMBOLS = ["AAPL", "IBM", "MSFT"]
ALGOS = Path(__file__).parent / "algos"
RTOL = 1e-9


@pytest.fixture(scope="module")
def cases():
    """(algorithm file, first session, capital) of each case."""
    examples = oracle.examples_dir()
    return {
        "buyapple": {"algo": examples / "buyapple.py", "start": "2014-01-02", "capital": 1e6},
        "dual_moving_average": {"algo": examples / "dual_moving_average.py", "start": START,
                                "capital": 1e5},
        "rebalance": {"algo": ALGOS / "rebalance.py", "start": "2012-03-01", "capital": 1e6},
        "defaults": {"algo": ALGOS / "defaults.py", "start": "2013-01-02", "capital": 1e6},
    }


@pytest.fixture(scope="module")
def frame():
    return oracle.synthetic_frame(SYMBOLS, START, END, seed=7)


@pytest.fixture(scope="module")
def zipline_out(frame, cases, tmp_path_factory):
    """Every case run once on real zipline-reloaded (one process, one bundle ingest)."""
    full = {k: {**v, "end": END} for k, v in cases.items()}
    return oracle.run_oracle(frame, full, tmp_path_factory.mktemp("zipline"))


@pytest.fixture(scope="module")
def shim_perf(frame, cases):
    out = {}
    for name, case in cases.items():
        module = load_algorithm(case["algo"])
        out[name] = run_algorithm(case["start"], END, module.initialize, case["capital"],
                                  handle_data=getattr(module, "handle_data", None), data=frame)
    return out


def _transactions(rows):
    """By session, then asset (in the order they happened within an asset: across assets
    the two engines book a session's fills in different orders, which changes nothing
    since neither checks cash between them)."""
    return sorted((tuple(r[:4]) for r in rows), key=lambda r: r[:2])


def _shim_transactions(perf):
    return _transactions([[t["dt"].date().isoformat(), t["sid"].symbol, t["amount"], t["price"]]
                          for day in perf.transactions for t in day])


def _shim_orders(perf):
    final = {}
    for day in perf.orders:
        for o in day:
            final[o["id"]] = o
    return sorted((o["created"].date().isoformat(), o["sid"].symbol, o["amount"], o["filled"],
                   o["commission"], o["status"]) for o in final.values())


def _close(a, b):
    return abs(a - b) <= RTOL * max(abs(a), abs(b), 1e-300)


NAMES = ["buyapple", "dual_moving_average", "rebalance", "defaults"]


@pytest.mark.parametrize("name", NAMES)
def test_same_transactions_orders_positions_and_values(name, shim_perf, zipline_out):
    ours, real = shim_perf[name], zipline_out[name]
    assert [d.date().isoformat() for d in ours.index] == real["index"]
    t_ours, t_real = _shim_transactions(ours), _transactions(real["transactions"])
    assert len(t_ours) == len(t_real) > 0
    for a, b in zip(t_ours, t_real, strict=True):
        assert a[:3] == b[:3]
        assert _close(a[3], b[3]), (a, b)
    o_ours, o_real = _shim_orders(ours), sorted(tuple(o) for o in real["orders"])
    assert len(o_ours) == len(o_real)
    for a, b in zip(o_ours, o_real, strict=True):
        assert a[:4] == b[:4] and a[5] == b[5], (a, b)
        assert _close(a[4], b[4]), (a, b)
    for col in ("portfolio_value", "ending_cash"):
        x, y = ours[col].to_numpy(float), np.array(real[col])
        rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-300)
        assert rel.max() <= RTOL, (col, rel.max(), ours.index[int(rel.argmax())])
    for day_ours, day_real in zip(ours.positions, real["positions"], strict=True):
        mine = sorted((p["sid"].symbol, p["amount"], p["cost_basis"], p["last_sale_price"])
                      for p in day_ours)
        theirs = sorted(tuple(p) for p in day_real)
        assert [p[:2] for p in mine] == [p[:2] for p in theirs]
        for p, q in zip(mine, theirs, strict=True):
            assert _close(p[2], q[2]) and _close(p[3], q[3]), (p, q)


def test_recorded_variables_match(shim_perf, zipline_out):
    for name in ("rebalance", "defaults", "dual_moving_average", "buyapple"):
        ours, real = shim_perf[name], zipline_out[name]["records"]
        assert real, name
        for col, values in real.items():
            if col == "best":
                def text(vs):
                    return [None if v is None or v != v else v for v in vs]

                assert text(ours[col]) == text(values)
                continue
            x, y = ours[col].to_numpy(float), np.array(values, dtype=float)
            same = (np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= RTOL * np.maximum(
                np.abs(y), 1.0))
            assert same.all(), (name, col)


def test_cases_exercise_what_they_claim(zipline_out):
    """The data makes the proof bite: both MA regimes, partial fills, carried-over orders."""
    amounts = [t[2] for t in zipline_out["dual_moving_average"]["transactions"]]
    assert any(a > 0 for a in amounts) and any(a < 0 for a in amounts)
    assert any(o[3] != o[2] for o in zipline_out["rebalance"]["orders"]), "no partial fill"
    per_order = {}
    for t in zipline_out["defaults"]["transactions"]:
        per_order[t[4]] = per_order.get(t[4], 0) + 1
    assert max(per_order.values()) > 1, "no order carried over to a later session"


def test_the_examples_are_zipline_s_own_and_run_unmodified(cases, zipline_out):
    for name in ("buyapple", "dual_moving_average"):
        path = cases[name]["algo"]
        assert path.parent.name == "examples" and path.parent.parent.name == "zipline"
        source = path.read_text()
        assert "from zipline.api import" in source and "mlbacktest" not in source
        # the oracle ran them on zipline's own api, the shim on ours
        assert zipline_out[name]["order_module"].startswith("zipline")
        module = load_algorithm(path)
        api_fn = module.order if hasattr(module, "order") else module.order_target
        assert api_fn.__module__ == "mlbacktest.compat.zipline.api"


# ------------------------------------------------------------ pipeline
PIPE_SYMBOLS = [f"S{i}" for i in range(8)]
PIPE_CASES = ("momentum_pipeline", "pipeline_screen")


@pytest.fixture(scope="module")
def pipe_cases():
    examples = oracle.examples_dir()
    return {
        # zipline's own example, with the dates and capital of its _test_args
        "momentum_pipeline": {"algo": examples / "momentum_pipeline.py", "start": "2013-10-07",
                              "end": "2013-11-29", "capital": 100_000.0},
        "pipeline_screen": {"algo": ALGOS / "pipeline_screen.py", "start": "2013-09-03",
                            "end": "2013-12-31", "capital": 1e6},
    }


@pytest.fixture(scope="module")
def pipe_frame():
    return oracle.synthetic_frame(PIPE_SYMBOLS, "2013-07-01", "2013-12-31", seed=13)


@pytest.fixture(scope="module")
def pipe_zipline(pipe_frame, pipe_cases, tmp_path_factory):
    return oracle.run_oracle(pipe_frame, pipe_cases, tmp_path_factory.mktemp("zipline_pipe"))


def test_momentum_pipeline_is_zipline_s_own_example_unmodified(pipe_cases):
    path = pipe_cases["momentum_pipeline"]["algo"]
    assert path.parent.name == "examples" and path.parent.parent.name == "zipline"
    source = path.read_text()
    assert "from zipline.pipeline import Pipeline" in source and "mlbacktest" not in source
    module = load_algorithm(path)
    assert module.order_target_percent.__module__ == "mlbacktest.compat.zipline.api"
    assert module.Pipeline.__module__ == "mlbacktest.compat.zipline.pipeline"


@pytest.mark.parametrize("name", PIPE_CASES)
def test_pipeline_algorithms_agree(name, pipe_frame, pipe_cases, pipe_zipline):
    case = pipe_cases[name]
    module = load_algorithm(case["algo"])
    ours = run_algorithm(case["start"], case["end"], module.initialize, case["capital"],
                         handle_data=getattr(module, "handle_data", None),
                         before_trading_start=module.before_trading_start, data=pipe_frame)
    real = pipe_zipline[name]
    assert [d.date().isoformat() for d in ours.index] == real["index"]
    t_ours, t_real = _shim_transactions(ours), _transactions(real["transactions"])
    assert len(t_ours) == len(t_real) > 0
    assert {t[2] > 0 for t in t_real} == {True, False}  # longs and shorts
    for a, b in zip(t_ours, t_real, strict=True):
        assert a[:3] == b[:3] and _close(a[3], b[3]), (a, b)
    for col in ("portfolio_value", "ending_cash"):
        x, y = ours[col].to_numpy(float), np.array(real[col])
        assert (np.abs(x - y) <= RTOL * np.abs(y)).all(), col
    for col, values in real["records"].items():
        mine = list(ours[col])
        for a, b in zip(mine, values, strict=True):
            if isinstance(b, str) or b is None:
                assert (a if a == a else None) == b, col
            else:
                assert (a != a and b != b) or _close(float(a), float(b)), (col, a, b)


# ------------------------------------------------------------ the preset, natively
def test_the_zipline_preset_reproduces_zipline_s_default_conventions(frame, zipline_out):
    """algos/defaults.py written as a native Strategy on BacktestConfig.preset("zipline"):
    next-close fills, 5 bps, at most 10 % of the volume with the rest carried over and
    $0.001 per share give zipline's fills and portfolio values (a margin account with a
    negligible requirement stands for zipline's unchecked cash)."""
    import polars as pl

    from mlbacktest import BacktestConfig, Strategy, run_backtest

    start = np.datetime64("2013-01-02")

    class Defaults(Strategy):
        def __init__(self):
            self.day = 0

        def on_slice(self, view, context):
            if np.datetime64(view.timestamp) < start:
                return
            self.day += 1
            if self.day % 40 == 1:
                self.order_percent("AAPL", 0.6)
            elif self.day % 40 == 21 and self.get_position("AAPL"):
                self.order("AAPL", -self.get_position("AAPL"))

    config = BacktestConfig.preset("zipline", initial_cash=1e6, account="margin",
                                   initial_margin=1e-6, maintenance_margin=1e-6)
    result = run_backtest(pl.from_pandas(frame), Defaults(), config)
    real = zipline_out["defaults"]
    fills = result.fills
    ours = [(str(t.date()), a, int(q), p) for t, a, q, p in
            zip(fills["timestamp"], fills["asset"], fills["quantity"], fills["price"],
                strict=True)]
    theirs = [tuple(t[:4]) for t in real["transactions"]]
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a[:3] == b[:3] and _close(a[3], b[3]), (a, b)
    equity = result.equity["equity"].to_numpy()[-len(real["portfolio_value"]):]
    y = np.array(real["portfolio_value"])
    assert (np.abs(equity - y) <= RTOL * np.abs(y)).all()
