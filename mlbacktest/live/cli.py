"""The ``mlbacktest paper`` and ``mlbacktest live`` commands (wired in :mod:`mlbacktest.cli`)."""

from __future__ import annotations

import argparse
import importlib
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "live_command", "paper_command"]

_PAPER_EXAMPLES = """
examples:
  mlbacktest paper strategy.py:MyStrategy --replay bars.parquet --speed 100 --out paper_run
  mlbacktest paper strategy.py:MyStrategy --replay bars.parquet --max-loss-fraction 0.05 \\
      --out paper_run
"""

_LIVE_EXAMPLES = """
examples (Alpaca's paper account; credentials from APCA_API_KEY_ID / APCA_API_SECRET_KEY):
  mlbacktest live strategy.py:MyStrategy --broker alpaca --symbols AAPL,MSFT --out live_run
  mlbacktest live strategy.py:MyStrategy --broker alpaca --symbols AAPL --credentials ~/.alpaca \\
      --max-loss 500 --max-position 100 --out live_run
real money needs both --live-money and --i-understand.
"""


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a number or 'inf', got {text!r}") \
            from None
    if math.isnan(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--speed must be > 0 (or 'inf'), got {text!r}")
    return value


def _common_live_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "strategy", metavar="STRATEGY",
        help="path/to/file.py:ClassName or package.module:ClassName (':ClassName' may be left "
             "out when the module defines exactly one Strategy subclass)")
    cmd.add_argument("--config", metavar="FILE",
                     help="BacktestConfig as a .toml, .yaml/.yml or .json file")
    cmd.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a keyword argument of the strategy's constructor (VALUE read as "
                          "JSON, else as a string); repeat for several")
    cmd.add_argument("--out", required=True, metavar="DIR",
                     help="the run's directory: journal.jsonl and result/; when it holds a "
                          "journal the run resumes (reconciled first)")
    cmd.add_argument("--overwrite", action="store_true",
                     help="replace an earlier result in DIR/result")
    cmd.add_argument("--run-id", default="mlbt", metavar="ID",
                     help="prefix of the client order ids (keep it to resume a run; default "
                          "'mlbt')")
    cmd.add_argument("--quiet", "-q", action="store_true", help="do not print the summary")
    kill = cmd.add_argument_group("kill switches (the run cancels its orders and stops)")
    kill.add_argument("--max-loss", type=float, metavar="CASH",
                      help="loss of equity from the initial cash")
    kill.add_argument("--max-loss-fraction", type=float, metavar="F",
                      help="the same as a fraction of the initial cash (0.05)")
    kill.add_argument("--max-orders-per-minute", type=int, metavar="N",
                      help="orders placed within a rolling minute of bar time")
    kill.add_argument("--max-position", type=float, metavar="QTY",
                      help="absolute quantity held of any one asset")
    kill.add_argument("--max-position-value", type=float, metavar="CASH",
                      help="absolute value held of any one asset")


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``paper`` and ``live`` to the subcommands of the ``mlbacktest`` parser."""
    paper = sub.add_parser(
        "paper", parents=[common], epilog=_PAPER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="paper-trade a strategy class on a replay of recorded bars",
        description="Run a Strategy subclass as a live run on a replay of recorded bars "
                    "(ReplayFeed), filled on paper by the backtest's broker, and write its "
                    "journal and result to --out.")
    _common_live_options(paper)
    paper.add_argument("--replay", required=True, metavar="PATH",
                       help="bars to replay: parquet, .csv, .tsv or Arrow IPC")
    paper.add_argument("--speed", type=_speed, default=math.inf, metavar="X",
                       help="replay speed: 1 is real time, 100 a hundred times faster, 'inf' "
                            "(default) as fast as the run goes")
    paper.add_argument("--signal-columns", metavar="A,B",
                       help="comma-separated signal columns of the replayed data")
    paper.add_argument("--start", metavar="TIME", help="replay from this timestamp on")

    live = sub.add_parser(
        "live", parents=[common], epilog=_LIVE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="trade a strategy class at a broker (Alpaca), paper account by default",
        description="Run a Strategy subclass on a broker's market-data stream and send its "
                    "orders to the broker: the paper account unless --live-money and "
                    "--i-understand are both given.")
    _common_live_options(live)
    live.add_argument("--broker", required=True, choices=["alpaca"], help="the venue")
    live.add_argument("--symbols", required=True, metavar="A,B",
                      help="comma-separated symbols to trade")
    live.add_argument("--credentials", metavar="FILE",
                      help="a file (mode 600) of APCA_API_KEY_ID=... and APCA_API_SECRET_KEY=... "
                           "lines; default: those environment variables")
    live.add_argument("--data-feed", default="iex", choices=["iex", "sip"],
                      help="Alpaca's market-data feed (default iex)")
    live.add_argument("--live-money", action="store_true",
                      help="trade the real-money account (also needs --i-understand)")
    live.add_argument("--i-understand", action="store_true",
                      help="confirm that --live-money sends real orders with real money")


def _kill_switches(args: argparse.Namespace) -> dict[str, Any] | None:
    names = ("max_loss", "max_loss_fraction", "max_orders_per_minute", "max_position",
             "max_position_value")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return given or None


def _prepare(args: argparse.Namespace) -> Any:
    """Usage checks, then the strategy class, config and instance (or an exit status)."""
    from mlbacktest.cli import (
        CLIError,
        _check_exists,
        _fail,
        _is_path,
        _load_strategy_class,
        _make_strategy,
        _on_path,
        _parse_params,
        _split_spec,
        _UserCodeError,
    )
    from mlbacktest.config import BacktestConfig
    from mlbacktest.errors import ConfigError
    from mlbacktest.live.killswitch import KillSwitches

    params = _parse_params(args.param)
    try:
        kill = KillSwitches.coerce(_kill_switches(args))
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if args.config is not None:
        _check_exists(args.config, "--config")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a directory")
    where = [os.getcwd()]
    strategy_file = _split_spec(args.strategy)[0]
    if _is_path(strategy_file):
        where.insert(0, str(Path(strategy_file).resolve().parent))
    tb = args.traceback
    with _on_path(*where):
        try:
            cls = _load_strategy_class(args.strategy)
        except _UserCodeError as exc:
            return _fail(exc.exc, exc.what, tb)
        try:
            config = (BacktestConfig.from_file(args.config) if args.config is not None
                      else BacktestConfig())
        except ConfigError as exc:
            return _fail(exc, f"bad config {args.config}", tb)
        except Exception as exc:  # unreadable file; TOML, JSON or YAML syntax
            return _fail(exc, f"cannot read the config {args.config}", tb)
        try:
            strategy = _make_strategy(cls, params)
        except _UserCodeError as exc:
            return _fail(exc.exc, exc.what, tb)
    return strategy, config, kill, out, where


def _execute(args: argparse.Namespace, make_engine: Any, where: list[str], out: Path) -> int:
    from mlbacktest.cli import EXIT_OK, _exit_called, _fail, _notes, _on_path
    from mlbacktest.errors import ConfigError, DataError
    from mlbacktest.live.journal import ReconcileError

    tb = args.traceback
    with _on_path(*where):
        try:
            engine = make_engine()
        except (DataError, ConfigError) as exc:
            return _fail(exc, "bad data" if isinstance(exc, DataError) else "bad option", tb)
        try:
            result = engine.run(out=out, overwrite=args.overwrite)
        except ReconcileError as exc:
            return _fail(exc, "cannot resume the run", tb)
        except SystemExit as exc:
            return _exit_called(exc, "the strategy", tb)
        except (DataError, ConfigError) as exc:
            return _fail(exc, "bad data" if isinstance(exc, DataError) else "bad option", tb)
        except Exception as exc:
            return _fail(exc, "the strategy raised" if _notes(exc) else "the run failed", tb)
    if not args.quiet:
        result.summary()
    if engine.stopped_by is not None:
        print(f"stopped by a kill switch: {engine.stopped_by.message}")
    print(f"journal written to {out / 'journal.jsonl'}")
    print(f"results written to {out / 'result'}{os.sep}")
    return EXIT_OK


def paper_command(args: argparse.Namespace) -> int:
    """``mlbacktest paper``: a replay, filled on paper."""
    from mlbacktest.cli import _check_exists, _check_format, _split_list
    from mlbacktest.live.engine import LiveEngine, PaperBroker
    from mlbacktest.live.replay import ReplayFeed

    _check_exists(args.replay, "--replay")
    _check_format(args.replay, "--replay")
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    strategy, config, kill, out, where = prepared

    def make() -> LiveEngine:
        feed = ReplayFeed(args.replay, speed=args.speed,
                          signal_columns=_split_list(args.signal_columns), start=args.start)
        return LiveEngine(feed, strategy, config, broker=PaperBroker(), run_id=args.run_id,
                          kill_switches=kill)

    return _execute(args, make, where, out)


def live_command(args: argparse.Namespace) -> int:
    """``mlbacktest live``: the broker's stream and the broker's orders."""
    from mlbacktest.cli import EXIT_FAILURE, CLIError, _split_list
    from mlbacktest.live.credentials import CredentialsError, load_credentials
    from mlbacktest.live.engine import LiveEngine

    if args.live_money and not args.i_understand:
        raise CLIError("--live-money sends real orders with real money: add --i-understand to "
                       "confirm (without both, the broker's paper account is used)")
    if args.i_understand and not args.live_money:
        raise CLIError("--i-understand confirms --live-money, which is not given")
    symbols = _split_list(args.symbols) or []
    if not symbols:
        raise CLIError("--symbols names no symbol")
    try:
        import alpaca  # noqa: F401  (alpaca-py)
    except ImportError:
        raise CLIError("--broker alpaca needs alpaca-py, which is not installed: "
                       "pip install 'mlbacktest[alpaca]'", EXIT_FAILURE) from None
    try:
        adapter = importlib.import_module("mlbacktest.live.alpaca")
    except ImportError as exc:
        raise CLIError(f"the Alpaca adapter cannot be imported ({exc}); install "
                       "'mlbacktest[alpaca]'", EXIT_FAILURE) from None
    try:
        creds = load_credentials(args.credentials)
    except CredentialsError as exc:
        raise CLIError(str(exc)) from None
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    strategy, config, kill, out, where = prepared

    def make() -> LiveEngine:
        broker = adapter.AlpacaBroker(api_key=creds.key_id, secret_key=creds.secret_key,
                                      live=bool(args.live_money))
        feed = adapter.AlpacaStreamFeed(symbols, api_key=creds.key_id,
                                        secret_key=creds.secret_key, feed=args.data_feed)
        return LiveEngine(feed, strategy, config, broker=broker, run_id=args.run_id,
                          kill_switches=kill)

    return _execute(args, make, where, out)
