"""HistoryWindow: the compiled reductions of history() windows equal numpy's, bit for bit."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed, Strategy
from mlbacktest._window import HistoryWindow, as_window
from mlbacktest.data.synthetic import synthetic_bars

#: every float64 incl. NaN, +-inf, -0.0, subnormals and the largest finite values
ANY_F64 = st.floats(allow_nan=True, allow_infinity=True, width=64)
#: values that sum to finite totals (the compiled path itself, not its fall-back)
FINITE_F64 = st.one_of(st.floats(-1e12, 1e12, width=64), st.sampled_from([0.0, -0.0, 1e-310]))

CALLS = [
    ("sum", {}), ("mean", {}), ("var", {}), ("std", {}), ("var", {"ddof": 1}),
    ("std", {"ddof": 1}), ("std", {"ddof": 2}), ("min", {}), ("max", {}),
]


def _result(method: str, arr: np.ndarray, kwargs: dict) -> tuple[object, ...]:
    """The type, bits and warnings of ``arr.<method>(**kwargs)`` (or the error it raises)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = getattr(arr, method)(**kwargs)
        except ValueError as exc:  # min / max of an empty window
            return type(exc), str(exc)
    return type(value), np.asarray(value).tobytes(), sorted(str(w.message) for w in caught)


def _same_as_numpy(values: np.ndarray, start: int, step: int) -> None:
    plain = values[start::step]
    window = as_window(values)[start::step]
    assert type(window) is HistoryWindow
    for method, kwargs in CALLS:
        assert _result(method, window, kwargs) == _result(method, plain, kwargs), (
            method, kwargs, plain)


@settings(max_examples=examples(300), deadline=None)
@given(values=hnp.arrays(np.float64, st.integers(0, 300), elements=ANY_F64),
       start=st.integers(0, 5), step=st.sampled_from([1, 1, 1, 2, 3, -1]))
def test_reductions_bit_identical_any_values(values, start, step):
    _same_as_numpy(values, start, step)


@settings(max_examples=examples(300), deadline=None)
@given(values=hnp.arrays(np.float64, st.integers(0, 300), elements=FINITE_F64),
       start=st.integers(0, 5), step=st.sampled_from([1, 1, 1, 2, 3]))
def test_reductions_bit_identical_finite_values(values, start, step):
    _same_as_numpy(values, start, step)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 127, 128, 129, 255, 256, 257, 300,
                               1000, 1024, 1025, 4099, 8192, 8193, 20000])
def test_every_length_class_of_pairwise_sum(n):
    rng = np.random.default_rng(n)
    values = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(-8, 9, n)
    _same_as_numpy(values, 0, 1)
    _same_as_numpy(values, 0, 2)


def test_errstate_is_numpy_s():
    """A sum that overflows or makes inf - inf raises under np.errstate like numpy's."""
    big = as_window(np.array([1.7e308, 1.7e308]))
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        big.sum()
    nan = as_window(np.array([np.inf, -np.inf]))
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        nan.mean()
    empty = _result("mean", as_window(np.empty(0)), {})
    assert empty == _result("mean", np.empty(0), {})
    assert "Mean of empty slice" in empty[2]


def test_other_arguments_go_to_numpy():
    values = np.arange(12.0).reshape(3, 4)
    window = as_window(values)
    assert np.array_equal(window.sum(axis=0), values.sum(axis=0))
    assert type(window.sum(axis=0)) is np.ndarray
    assert window.mean(keepdims=True).shape == (1, 1)
    assert window.sum(initial=5.0) == values.sum() + 5.0
    assert window.std(ddof=1.0) == values.std(ddof=1.0)
    flat = as_window(np.arange(5.0))
    assert flat.sum(where=flat > 1) == 9.0
    assert flat.min(initial=-1.0) == -1.0
    assert flat.mean(dtype=np.float32).dtype == np.float32
    assert np.mean(flat) == 2.0 and np.sum(flat) == 10.0 and np.std(flat) == np.std(np.arange(5.0))


def test_class_stays_on_slices_not_on_results():
    window = as_window(np.arange(30.0))
    assert not window.flags.writeable
    assert type(window[-10:]) is HistoryWindow
    for result in (window * 2.0, window + np.ones(30), np.ones(30) - window, window > 3,
                   np.sqrt(window), window.cumsum(), np.diff(window), np.asarray(window)):
        assert type(result) is np.ndarray
    assert type(np.add.reduce(window)) is np.float64
    assert type(window[3]) is np.float64
    again = pickle.loads(pickle.dumps(window))
    assert type(again) is HistoryWindow and np.array_equal(again, window)


class _Reads(Strategy):
    """Records each window's class and its reductions against numpy's on the same values."""

    def on_start(self):
        self.seen = []

    def on_market_data(self, event, context):
        closes = self.history(event.asset_id, "close", 30)
        plain = np.array(closes)
        self.seen.append((type(closes), closes[-10:].mean() == plain[-10:].mean(),
                          closes.std() == plain.std() if closes.shape[0] else True))
        panel = self.history_panel("close", 5)
        self.seen.append((type(panel), True, True))


def test_history_and_history_panel_return_windows():
    frame = synthetic_bars(3, 40, seed=3, every="1d")
    strategy = _Reads()
    BacktestEngine(PolarsDataFeed(frame), strategy, BacktestConfig()).run(progress=False)
    assert strategy.seen
    assert {kind for kind, _, _ in strategy.seen} == {HistoryWindow}
    assert all(mean_ok and std_ok for _, mean_ok, std_ok in strategy.seen)
