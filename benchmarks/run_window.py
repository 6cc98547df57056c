"""The reductions of a history() window: compiled (HistoryWindow) against numpy's own.

``Strategy.history`` returns a :class:`mlbacktest._window.HistoryWindow`,
whose ``sum``, ``mean``, ``var``, ``std``, ``min`` and ``max`` with default
arguments run a compiled kernel equal to numpy's bit for bit. This script
times each call on the same values held as a plain ndarray and as a window,
in interleaved rounds (best of ``--repeat``), and checks the results are the
same bits::

    python benchmarks/run_window.py
    python benchmarks/run_window.py --lengths 10 30 250 --repeat 7
"""

from __future__ import annotations

import argparse
import timeit

import _script  # noqa: F401  (import set-up: the in-place build when not installed)
import numpy as np

from mlbacktest._window import as_window

CALLS = ["x.sum()", "x.mean()", "x[-10:].mean()", "x.std()", "x.var(ddof=1)", "x.min()",
         "x.max()", "np.mean(x)", "x[-10:]"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 30, 250])
    p.add_argument("--repeat", type=int, default=5, help="interleaved rounds (best is kept)")
    p.add_argument("--number", type=int, default=20_000, help="calls per timing")
    args = p.parse_args()
    print(_script.environment())
    rng = np.random.default_rng(0)
    print(f"{'call':<18}{'n':>6}{'ndarray ns':>12}{'window ns':>11}{'speed-up':>10}")
    for n in args.lengths:
        plain = rng.normal(100.0, 5.0, n)
        plain.flags.writeable = False
        window = as_window(plain)
        for call in CALLS:
            if call.startswith("x[-10:]") and n < 10:
                continue
            a = eval(call, {"np": np, "x": plain})  # noqa: S307  (the fixed calls above)
            b = eval(call, {"np": np, "x": window})  # noqa: S307
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (call, n)
            best = {"ndarray": float("inf"), "window": float("inf")}
            for _ in range(args.repeat):
                for name, x in (("ndarray", plain), ("window", window)):
                    t = timeit.timeit(call, globals={"np": np, "x": x}, number=args.number)
                    best[name] = min(best[name], t / args.number)
            print(f"{call:<18}{n:>6}{best['ndarray'] * 1e9:>12.0f}{best['window'] * 1e9:>11.0f}"
                  f"{best['ndarray'] / best['window']:>9.1f}x")


if __name__ == "__main__":
    main()
