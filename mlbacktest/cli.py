"""Command line: ``python -m mlbacktest demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlbacktest", description="Event-driven backtests for machine-learning research."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a multi-asset backtest on built-in synthetic data")
    demo.add_argument("--assets", type=int, default=50, help="number of assets (default 50)")
    demo.add_argument("--bars", type=int, default=756, help="daily bars per asset (default 756)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlbacktest`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from mlbacktest.demo import run_demo

        if args.assets < 10 or args.bars < 2:
            print("mlbacktest: the demo needs at least 10 assets and 2 bars", file=sys.stderr)
            return 2
        run_demo(args.assets, args.bars, args.seed)
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
