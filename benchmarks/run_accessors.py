#!/usr/bin/env python
"""Cost of the per-bar accessors and order helpers of Strategy, in ns per call from Python.

Usage (from the repository root)::

    python benchmarks/run_accessors.py                  # 500 x 300 panel, 1 x 100,000 bars
    python benchmarks/run_accessors.py --json after.json
    PYTHONPATH=/path/to/other/checkout python benchmarks/run_accessors.py --json before.json
    python benchmarks/run_accessors.py --compare before.json   # before/after columns

Every number is taken inside a run, in ``on_slice`` at the last timestamp
(``benchmarks/benchmarks/accessor_cases.py``): a loop ``for i in range(k):
<call>`` written as a user writes it, best of several rounds, divided by
``k``. The baseline is the same loop calling an empty Python method of the
strategy, measured in the same process: what any call costs.

* ``history(asset, field, 30)`` of a bar field and of a signal, by name and
  by id; ``get_last_price``, ``get_position``, ``get_unrealized_pnl`` by
  name (500 assets x ``--bars``). Targets: 300 ns and 150 ns per call.
* ``history_panel("close", 30)``: per call with every asset (500 columns)
  and with one column (the fixed cost); per column is
  ``(T(500) - T(1)) / 499``. Target: 300 ns per column.
* ``buy``, ``sell``, ``close_position``, ``order_target_quantity/value/
  percent`` by name with default arguments, each placing a market order
  (targets alternate so every call trades; ``close_position`` is timed
  after a ``buy`` of one unit, whose cost is subtracted). Target: 500 ns.
* The slice-view arrays (``view.close`` ... ``view.weights``) on 500 assets
  and on one asset x ``--one-asset-bars`` minute bars. Target: a few
  hundred ns (checked at 300 ns on one asset).
* One asset: whole runs of ``FewSlice`` (reads ``view.close``,
  ``view.signals``, ``view.positions`` and compares them in ``on_slice``),
  of ``FewMarketData`` (the same on the bar's scalars in
  ``on_market_data``) and of an empty ``on_slice``, in ns per timestamp.
* The 10/30 moving-average strategy written with ``history(asset, "close",
  30)`` and two numpy means per asset-bar in ``on_market_data``
  (``HistoryMeans``, 100 assets x ``--ma-bars``): asset-bars/s.
* A signal-threshold strategy written as a per-asset loop of ``buy`` /
  ``close_position`` in ``on_slice`` against the same decisions through one
  ``order_many`` call (whole runs, ``--loop-bars`` bars): at most 1.5x.
"""

from __future__ import annotations

import argparse
import json
import sys

import _script  # noqa: E402  (first: sets up the imports below)
from _script import common  # noqa: E402


def _rows(results: dict[str, dict[str, float]], loop: dict[str, float] | None) -> list[tuple]:
    """(section, case, ns, target or None) rows, with the derived numbers."""
    from benchmarks import accessor_cases as ac

    rows: list[tuple] = []
    panel = results["panel"]
    for case, (_, target) in {**ac.HISTORY_CASES, **ac.GETTER_CASES}.items():
        rows.append(("panel", case, panel[case], target))
    n = results["meta"]["assets"]
    t_all = panel["history_panel('close', 30), all assets"]
    t_one = panel["history_panel('close', 30), 1 asset"]
    rows.append(("panel", f"history_panel('close', 30), {n:.0f} columns, per call", t_all, None))
    rows.append(("panel", "history_panel('close', 30), 1 column (fixed cost)", t_one, None))
    rows.append(("panel", "history_panel, per column beyond the fixed cost",
                 (t_all - t_one) / max(n - 1, 1), ac.PANEL_COLUMN_TARGET_NS))
    for case, (_, target) in ac.ORDER_CASES.items():
        rows.append(("panel", case, panel[case], target))
    rows.append(("panel", "close_position(name)", panel["close_position(name)"],
                 ac.ORDER_TARGET_NS))
    for case in ac.VIEW_CASES:
        rows.append(("panel", f"{case} ({n:.0f} assets)", panel[case], None))
    one = results["one"]
    for case, (_, target) in ac.VIEW_CASES.items():
        rows.append(("one", f"{case} (1 asset)", one[case], target))
    rows.append(("panel", f"baseline: empty method ({n:.0f} assets)", panel["baseline"], None))
    rows.append(("one", "baseline: empty method (1 asset)", one["baseline"], None))
    for case, ns in results.get("hooks", {}).items():
        rows.append(("hooks", f"1 asset, whole run per timestamp: {case}", ns, None))
    ma = results.get("ma")
    if ma:
        rows.append(("ma", "10/30 MA with history() + numpy means, M asset-bars/s",
                     ma["asset_bars_per_s"] / 1e6, None))
    if loop is not None:
        rows.append(("loop", "per-asset buy/close_position loop / order_many (ratio)",
                     loop["loop"] / loop["order_many"], ac.LOOP_RATIO_TARGET))
    return rows


def measure(args: argparse.Namespace) -> dict:
    from benchmarks import accessor_cases as ac

    panel_feed = common.feed(args.assets, args.bars, args.seed)
    groups = ("history", "getters", "orders", "views", "panel")
    out: dict = {"meta": {"assets": args.assets, "bars": args.bars,
                          "one_asset_bars": args.one_asset_bars, "loop_bars": args.loop_bars}}
    out["panel"] = ac.run_probe(panel_feed, groups, args.bars - 1, rounds=args.rounds)
    one_feed = ac.one_asset_feed(args.one_asset_bars, args.seed)
    out["one"] = ac.run_probe(one_feed, ("history", "getters", "views"),
                              args.one_asset_bars - 1, rounds=args.rounds)
    out["hooks"] = ac.few_asset_hooks(one_feed, rounds=args.loop_rounds)
    if args.ma_bars > 0:
        out["ma"] = ac.history_means_rate(common.feed(100, args.ma_bars, args.seed),
                                          rounds=args.loop_rounds)
    if args.loop_bars > 0:
        loop_feed = common.feed(args.assets, args.loop_bars, args.seed)
        best = ac.loop_vs_many(loop_feed, rounds=args.loop_rounds)
        out["loop"] = {k: v for k, v in best.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _script.add_size_args(p, 500, 300, repeat=None)
    p.add_argument("--one-asset-bars", type=int, default=100_000)
    p.add_argument("--loop-bars", type=int, default=504,
                   help="bars of the loop-vs-order_many runs (0: skip them)")
    p.add_argument("--ma-bars", type=int, default=504,
                   help="bars of the 100-asset history()+means runs (0: skip them)")
    p.add_argument("--rounds", type=int, default=7, help="timed loops per case (best is kept)")
    p.add_argument("--loop-rounds", type=int, default=3)
    p.add_argument("--json", help="also write the measurements to this file")
    p.add_argument("--compare", help="a --json file of another build: adds a 'before' column")
    args = p.parse_args(argv)

    import mlbacktest

    print(_script.environment())
    print(f"mlbacktest from {mlbacktest.__file__}")
    print(f"{args.assets} assets x {args.bars} bars; 1 asset x {args.one_asset_bars:,} bars")
    res = measure(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    before = None
    if args.compare:
        with open(args.compare) as fh:
            prev = json.load(fh)
        before = {(s, c): v for s, c, v, _ in _rows(prev, prev.get("loop"))}
    rows = _rows(res, res.get("loop"))
    head = f"{'case':<62} {'ns/call':>10}"
    if before is not None:
        head += f" {'before':>10} {'speed-up':>9}"
    print(head + f" {'target':>8}  result")
    missed = 0
    for section, case, ns, target in rows:
        ratio = "ratio" in case or "M asset-bars/s" in case
        line = f"{case:<62} {ns:>10.2f}" if ratio else f"{case:<62} {ns:>10.0f}"
        if before is not None:
            b = before.get((section, case))
            if b is None:
                line += f" {'n/a':>10} {'':>9}"
            else:
                gain = ns / b if "asset-bars/s" in case else b / ns
                line += (f" {b:>10.2f}" if ratio else f" {b:>10.0f}") + f" {gain:>8.1f}x"
        if target is None:
            line += f" {'':>8}"
        else:
            ok = ns <= target
            missed += not ok
            line += f" {target:>8g}  {'PASS' if ok else 'MISS'}"
        print(line)
    if res.get("loop"):
        lp = res["loop"]
        print(f"whole runs, {args.assets} x {args.loop_bars}: loop {lp['loop']:.3f} s, "
              f"order_many {lp['order_many']:.3f} s")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
