"""Errors raised by strategies keep their type and gain a note saying where;
a checkout that was never built fails to import with a readable message."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import bars, day, run

import mlbacktest
from mlbacktest import BacktestConfig, LookAheadWarning, OrderError, Strategy

FLAT = (100, 101, 99, 100)
DATA = {"A": [FLAT] * 3, "B": [FLAT] * 3}


class StrategyBlewUp(Exception):
    """A user-defined exception type: it must come out unchanged."""


class Recorder(Strategy):
    """Records every hook call; ``boom(hook, ts, asset)`` decides whether to raise."""

    def __init__(self, fail_in: str, at: int, asset: str | None = None,
                 exc: type[BaseException] = ZeroDivisionError) -> None:
        self.fail_in, self.at, self.fail_asset, self.exc = fail_in, at, asset, exc
        self.calls: list[tuple] = []
        self.ended = False

    def _maybe_fail(self, hook, ts, asset=None):
        if hook == self.fail_in and ts == day(self.at) and asset == self.fail_asset:
            if self.exc is ZeroDivisionError:
                1 / 0  # noqa: B018  (a genuine ZeroDivisionError from user code)
            raise self.exc(f"{hook} failed")

    def on_start(self):
        self.buy("A", 1)  # fills at day 0's open
        self.schedule_at(self.rebalance, day(1))

    def on_market_data(self, event, context):
        self.calls.append(("on_market_data", event.timestamp, event.asset))
        self._maybe_fail("on_market_data", event.timestamp, event.asset)
        if event.asset == "B" and event.timestamp == day(0):
            self.buy("B", 1)  # fills at day 1's open -> an on_fill call at day 1

    def on_slice(self, view, context):
        self.calls.append(("on_slice", view.timestamp))
        self._maybe_fail("on_slice", view.timestamp)

    def on_fill(self, fill):
        self.calls.append(("on_fill", fill.timestamp, fill.asset))
        self._maybe_fail("on_fill", fill.timestamp, fill.asset)

    def rebalance(self, context):
        self.calls.append(("rebalance", self.now))
        self._maybe_fail("rebalance", self.now)

    def on_end(self):
        self.ended = True


ALL_CALLS = [
    ("on_fill", day(0), "A"),
    ("on_market_data", day(0), "A"),
    ("on_market_data", day(0), "B"),
    ("on_slice", day(0)),
    ("on_fill", day(1), "B"),
    ("on_market_data", day(1), "A"),
    ("on_market_data", day(1), "B"),
    ("on_slice", day(1)),
    ("rebalance", day(1)),
    ("on_market_data", day(2), "A"),
    ("on_market_data", day(2), "B"),
    ("on_slice", day(2)),
]


def test_recorder_calls_without_failure():
    strat = Recorder(fail_in="nowhere", at=0)
    run(bars(DATA), strat)
    assert strat.calls == ALL_CALLS and strat.ended


def _mlbacktest_notes(exc: BaseException) -> list[str]:
    return [n for n in getattr(exc, "__notes__", []) if n.startswith("mlbacktest:")]


CASES = [
    # hook, bar index, asset, exception type, note
    ("on_market_data", 1, "B", ZeroDivisionError,
     "mlbacktest: raised in on_market_data() at timestamp 2024-01-02 00:00:00, asset 'B'"),
    ("on_market_data", 0, "A", StrategyBlewUp,
     "mlbacktest: raised in on_market_data() at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("on_slice", 1, None, StrategyBlewUp,
     "mlbacktest: raised in on_slice() at timestamp 2024-01-02 00:00:00"),
    ("on_fill", 1, "B", KeyError,
     "mlbacktest: raised in on_fill() at timestamp 2024-01-02 00:00:00, asset 'B'"),
    ("on_fill", 0, "A", ZeroDivisionError,
     "mlbacktest: raised in on_fill() at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("rebalance", 1, None, StrategyBlewUp,
     "mlbacktest: raised in rebalance() at timestamp 2024-01-02 00:00:00"),
]


@pytest.mark.parametrize(("hook", "at", "asset", "exc_type", "note"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[3].__name__}" for c in CASES])
def test_hook_exception_keeps_type_gains_note_and_stops_run(hook, at, asset, exc_type, note):
    strat = Recorder(fail_in=hook, at=at, asset=asset, exc=exc_type)
    with pytest.raises(exc_type) as info:
        run(bars(DATA), strat)
    assert type(info.value) is exc_type  # the original type, not a wrapper
    assert _mlbacktest_notes(info.value) == [note]
    # the run stopped at the failing call: nothing after it, and no on_end
    failing = (hook, day(at), asset) if asset is not None else (hook, day(at))
    assert strat.calls == ALL_CALLS[: ALL_CALLS.index(failing) + 1]
    assert not strat.ended


def test_timer_note_names_the_hook_for_a_lambda_callback():
    class LambdaTimer(Strategy):
        def on_start(self):
            self.schedule_at(lambda ctx: 1 / 0, "2024-01-02")

    with pytest.raises(ZeroDivisionError) as info:
        run(bars(DATA), LambdaTimer())
    (note,) = _mlbacktest_notes(info.value)
    assert "2024-01-02 00:00:00" in note and "raised in" in note


def test_order_error_inside_a_hook_propagates_with_a_note():
    class BadOrder(Strategy):
        def on_market_data(self, event, context):
            self.buy("NOPE", 1)

    with pytest.raises(OrderError, match="unknown asset 'NOPE'") as info:
        run(bars(DATA), BadOrder())
    assert _mlbacktest_notes(info.value) == [
        "mlbacktest: raised in on_market_data() at timestamp 2024-01-01 00:00:00, asset 'A'"]


def test_existing_notes_are_kept():
    class Noted(Strategy):
        def on_slice(self, view, context):
            exc = StrategyBlewUp("x")
            exc.add_note("user note")
            raise exc

    with pytest.raises(StrategyBlewUp) as info:
        run(bars(DATA), Noted())
    assert info.value.__notes__[0] == "user note"
    assert len(_mlbacktest_notes(info.value)) == 1


def test_on_fill_exception_with_fill_at_close():
    class FailOnCloseFill(Strategy):
        def __init__(self):
            self.calls = []

        def on_slice(self, view, context):
            self.calls.append(("on_slice", view.timestamp))
            if view.timestamp == day(0):
                self.buy("A", 1)

        def on_fill(self, fill):
            self.calls.append(("on_fill", fill.timestamp))
            raise StrategyBlewUp("fill")

    with pytest.warns(LookAheadWarning):
        cfg = BacktestConfig(fill_at="close")
    strat = FailOnCloseFill()
    with pytest.raises(StrategyBlewUp) as info:
        run(bars(DATA), strat, cfg)
    assert _mlbacktest_notes(info.value) == [
        "mlbacktest: raised in on_fill() at timestamp 2024-01-01 00:00:00, asset 'A'"]
    assert strat.calls == [("on_slice", day(0)), ("on_fill", day(0))]


# ----------------------------------------------------------------- never built
def test_import_of_a_never_built_checkout_says_how_to_build(tmp_path):
    src = Path(mlbacktest.__file__).parent
    # a source checkout: every Python/Cython source file, no compiled extension
    shutil.copytree(src, tmp_path / "mlbacktest",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    copied = list((tmp_path / "mlbacktest").rglob("*"))
    assert not any(p.suffix in (".so", ".pyd") for p in copied)
    assert (tmp_path / "mlbacktest" / "__init__.py").exists()
    # ``-S`` skips the .pth files of site-packages: the editable install of
    # this checkout registers an import hook there that would find the built
    # extension modules of /work/main for the copy. Third-party packages stay
    # importable through the site-packages directories added by hand.
    script = textwrap.dedent(f"""
        import site, sys
        sys.path[:0] = [{str(tmp_path)!r}]
        sys.path.extend(site.getsitepackages())
        assert not any("editable" in type(f).__module__ for f in sys.meta_path)
        try:
            import mlbacktest
        except ImportError as exc:
            errors = sys.modules.get("mlbacktest.errors")
            print("FILE", getattr(errors, "__file__", None))
            print("TYPE", type(exc).__name__)
            print("MSG", exc)
            raise SystemExit(0)
        print("IMPORTED", mlbacktest.__file__)
        raise SystemExit(1)
    """)
    proc = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"FILE {tmp_path}" in out  # the copy was imported, not the built package
    assert "TYPE NotBuiltError" in out
    assert "mlbacktest is not built" in out
    assert "pip install -e ." in out


# ---------------------------------------------------------------- every hook and callback
class Raiser(Strategy):
    """Raises ``exc`` from the hook named ``where`` (the first time it is called)."""

    def __init__(self, where: str, exc: BaseException) -> None:
        self.where, self.exc = where, exc

    def _boom(self, hook: str) -> None:
        if hook == self.where:
            raise self.exc

    def on_start(self):
        self._boom("on_start")
        self.buy("A", 1)
        self.schedule_at(self.timer_callback, day(1))
        self.schedule(self.every_day, "1d")

    def on_market_data(self, event, context):
        self._boom("on_market_data")

    def on_slice(self, view, context):
        self._boom("on_slice")

    def on_fill(self, fill):
        self._boom("on_fill")

    def on_order(self, order):
        if order.status == "filled":
            self._boom("on_order")

    def on_signal(self, event, context):
        self._boom("on_signal")

    def timer_callback(self, context):
        self._boom("timer_callback")

    def every_day(self, context):
        self._boom("every_day")

    def on_end(self):
        self._boom("on_end")


def _model_raising(where: str, exc: BaseException):
    from mlbacktest import CommissionModel, SlippageModel

    class BadCommission(CommissionModel):
        def compute(self, asset, quantity, price, ts):
            if where == "compute":
                raise exc
            return 0.0

        def record_fill(self, asset, quantity, price, ts):
            if where == "commission.record_fill":
                raise exc

        def reset(self, n_assets):
            if where == "commission.reset":
                raise exc

    class BadSlippage(SlippageModel):
        def fill_price(self, asset, quantity, raw_price, bar_volume, ts, row=-1):
            if where == "fill_price":
                raise exc
            return raw_price

        def record_fill(self, asset, quantity, price, bar_volume, ts, row=-1):
            if where == "slippage.record_fill":
                raise exc

        def reset(self, n_assets, columns=None):
            if where == "slippage.reset":
                raise exc

    return BadCommission(), BadSlippage()


HOOK_NOTES = [
    # where it raises, the note it must carry
    ("on_start", "mlbacktest: raised in on_start()"),
    ("on_end", "mlbacktest: raised in on_end()"),
    ("on_market_data", "mlbacktest: raised in on_market_data() at timestamp 2024-01-01 00:00:00, "
                       "asset 'A'"),
    ("on_slice", "mlbacktest: raised in on_slice() at timestamp 2024-01-01 00:00:00"),
    ("on_fill", "mlbacktest: raised in on_fill() at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("on_order", "mlbacktest: raised in on_order() at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("on_signal", "mlbacktest: raised in on_signal() at timestamp 2024-01-02 00:00:00, "
                  "asset 'B'"),
    ("timer_callback", "mlbacktest: raised in timer_callback() at timestamp 2024-01-02 00:00:00"),
    ("every_day", "mlbacktest: raised in every_day() at timestamp 2024-01-01 00:00:00"),
    ("compute", "mlbacktest: raised in BadCommission.compute() (commission model) at timestamp "
                "2024-01-01 00:00:00, asset 'A'"),
    ("commission.record_fill", "mlbacktest: raised in BadCommission.record_fill() (commission "
                               "model) at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("commission.reset", "mlbacktest: raised in BadCommission.reset() (commission model)"),
    ("fill_price", "mlbacktest: raised in BadSlippage.fill_price() (slippage model) at timestamp "
                   "2024-01-01 00:00:00, asset 'A'"),
    ("slippage.record_fill", "mlbacktest: raised in BadSlippage.record_fill() (slippage model) "
                             "at timestamp 2024-01-01 00:00:00, asset 'A'"),
    ("slippage.reset", "mlbacktest: raised in BadSlippage.reset() (slippage model)"),
]


def _run_raising(where: str, exc: BaseException) -> None:
    import polars as pl

    from mlbacktest import BacktestEngine, PolarsDataFeed
    from mlbacktest.data.source import SignalSource

    commission, slippage = _model_raising(where, exc)
    source = SignalSource(pl.DataFrame([(day(1), "B", 0.5)],
                                       schema=["timestamp", "asset", "pred"], orient="row"))
    BacktestEngine(PolarsDataFeed(bars(DATA)), Raiser(where, exc),
                   BacktestConfig(commission=commission, slippage_bps=slippage),
                   sources=source).run(progress=False)


@pytest.mark.parametrize(("where", "note"), HOOK_NOTES, ids=[h for h, _ in HOOK_NOTES])
def test_every_hook_and_callback_gets_a_note(where, note):
    with pytest.raises(StrategyBlewUp) as info:
        _run_raising(where, StrategyBlewUp(where))
    assert type(info.value) is StrategyBlewUp
    assert _mlbacktest_notes(info.value) == [note]


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt, GeneratorExit])
@pytest.mark.parametrize("where", ["on_start", "on_slice", "on_fill", "compute", "on_end"])
def test_base_exceptions_keep_their_type_and_get_the_note(where, exc_type):
    with pytest.raises(exc_type) as info:
        _run_raising(where, exc_type(where))
    assert type(info.value) is exc_type
    (note,) = _mlbacktest_notes(info.value)
    assert note.startswith("mlbacktest: raised in ")


# ---------------------------------------------------------------- one run per engine
def test_a_second_run_of_an_engine_is_refused():
    from mlbacktest import BacktestEngine, PolarsDataFeed

    engine = BacktestEngine(PolarsDataFeed(bars(DATA)), Recorder(fail_in="nowhere", at=0))
    engine.run(progress=False)
    with pytest.raises(RuntimeError, match="already run.*new BacktestEngine"):
        engine.run(progress=False)


def test_a_strategy_instance_runs_once():
    from mlbacktest import BacktestEngine, PolarsDataFeed

    strat = Recorder(fail_in="nowhere", at=0)
    first = BacktestEngine(PolarsDataFeed(bars(DATA)), strat).run(progress=False)
    with pytest.raises(RuntimeError, match="Recorder instance has already been run"):
        BacktestEngine(PolarsDataFeed(bars(DATA)), strat).run(progress=False)
    # a new engine with a new strategy reproduces the first run exactly
    again = BacktestEngine(PolarsDataFeed(bars(DATA)), Recorder(fail_in="nowhere", at=0)).run(
        progress=False)
    assert again.equity.equals(first.equity) and again.fills.equals(first.fills)
