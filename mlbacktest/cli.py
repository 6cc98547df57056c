"""The ``mlbacktest`` command: ``demo``, ``run``, ``report``, ``sweep`` and ``walk-forward``.

``python -m mlbacktest demo`` runs the built-in demo and writes its report;
``mlbacktest run strategy.py:MyStrategy --data bars.parquet --out results/``
backtests a strategy class on parquet (or CSV, Arrow IPC) data and writes the results
and an HTML report; ``mlbacktest report results/`` rebuilds the report from
a results directory; ``mlbacktest sweep`` and ``mlbacktest walk-forward`` run
a grid of parameters (see docs/guide/research.md). :func:`main` is the entry
point; it returns the exit
status instead of exiting, so it can be called in-process.

Exit status: 0 on success; 2 when the command line does not name a runnable
backtest (an unknown option, a path that does not exist, a strategy that
cannot be found or is not a :class:`~mlbacktest.Strategy` subclass, an
output directory holding anything mlbacktest did not write, or an earlier
output without ``--overwrite``); 1 when the inputs it names are invalid or the
run fails (a ``DataError``, a ``ConfigError``, a ``ResultFileError``, an
exception raised by the strategy's code, ``sys.exit()`` called by it);
130 after Ctrl-C and 143 after SIGTERM.

Output is written into a new sibling directory that replaces ``--out`` only
once the results and the report are complete, so a run that fails or is
interrupted leaves an earlier result untouched (see docs/guide/cli.md).
"""

from __future__ import annotations

import argparse
import glob as _glob
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from mlbacktest._version import __version__
from mlbacktest.results.io import REPORT_FILE

if TYPE_CHECKING:  # pragma: no cover
    from mlbacktest.results import BacktestResult
    from mlbacktest.strategy import Strategy

__all__ = ["main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "CLIError", "load_strategy_class"]

#: Exit status of a successful command.
EXIT_OK = 0
#: Exit status when the inputs are invalid or the run fails (data, config, strategy errors).
EXIT_FAILURE = 1
#: Exit status when the command line does not name a runnable backtest.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (SIGINT), as a shell reports it (128 + 2).
EXIT_SIGINT = 130
#: Exit status after SIGTERM, as a shell reports it (128 + 15).
EXIT_SIGTERM = 143

#: Name of the report written in an output directory.
REPORT_NAME = REPORT_FILE
#: Default output directory of ``mlbacktest demo``.
DEMO_OUT = "mlbacktest-demo"

_EPILOG = """\
exit status:
  0  success
  1  the inputs are invalid or the run failed: bad data (DataError), bad
     config (ConfigError), an exception raised by the strategy's code or
     sys.exit() called by it, altered results (ResultFileError)
  2  usage error: bad options, a missing file, a strategy that cannot be found
     or is not a Strategy subclass, an output directory holding files
     mlbacktest did not write (or an earlier output without --overwrite)
  130, 143  interrupted by Ctrl-C or SIGTERM; nothing was written

Errors are printed as one line starting 'mlbacktest: error:'; add --traceback
to see the full Python traceback.
"""

_RUN_EXAMPLES = """\
examples:
  mlbacktest run strategies/momentum.py:Momentum --data bars.parquet --out results/
  mlbacktest run mypkg.strategies:TopK --data 'bars/*.parquet' --signals preds.parquet \\
      --config config.toml --param k=10 --param side='"long"' --out results/
  mlbacktest report results/

"""


class CLIError(Exception):
    """An error the command reports as one line, with its exit status.

    Parameters
    ----------
    message : str
        What went wrong (printed after ``mlbacktest: error:``).
    status : int
        Exit status (:data:`EXIT_USAGE` or :data:`EXIT_FAILURE`).
    """

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``mlbacktest: error:`` line."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlbacktest",
        description="Event-driven backtests for machine-learning research.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlbacktest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--traceback", action="store_true",
                        help="on an error, print the full Python traceback")
    report_opts = _Parser(add_help=False)
    rgroup = report_opts.add_argument_group("report options")
    rgroup.add_argument("--benchmark", metavar="PATH",
                        help="a benchmark to compare with in the report: parquet, .csv, .tsv or "
                             "Arrow IPC with 'timestamp' and one of 'returns', 'price' or "
                             "'close'")
    rgroup.add_argument("--benchmark-name", metavar="NAME",
                        help="label of the benchmark (default 'Benchmark')")
    rgroup.add_argument("--title", help="heading of the report")

    demo = sub.add_parser(
        "demo", parents=[common], epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run a long-short backtest on built-in synthetic data and write its report",
        description="Run a top-5/bottom-5 long-short strategy on synthetic predictions, print "
                    "its summary and write its results and HTML report to --out.",
    )
    demo.add_argument("--assets", type=int, default=50, help="number of assets (default 50)")
    demo.add_argument("--bars", type=int, default=756, help="daily bars per asset (default 756)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    demo.add_argument("--out", default=DEMO_OUT, metavar="DIR",
                      help=f"output directory (default ./{DEMO_OUT}); an earlier mlbacktest "
                           "output there is replaced, a directory holding anything else is "
                           "refused")
    demo.add_argument("--no-report", action="store_true",
                      help="only print the summary; write nothing")

    run = sub.add_parser(
        "run", parents=[common, report_opts], epilog=_RUN_EXAMPLES + _EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="backtest a strategy class on parquet, CSV or Arrow IPC data",
        description="Backtest a Strategy subclass and write its results (parquet) and an HTML "
                    "report (report.html) to the --out directory.",
    )
    run.add_argument(
        "strategy", metavar="STRATEGY", nargs="?",
        help="path/to/file.py:ClassName or package.module:ClassName (':ClassName' may be left "
             "out when the module defines exactly one Strategy subclass)",
    )
    run.add_argument("--zipline", metavar="ALGO.py",
                     help="instead of STRATEGY: a zipline algorithm file (initialize, "
                          "handle_data, ...), run unmodified through mlbacktest.compat.zipline "
                          "on daily --data (timestamp, asset, open, high, low, close, volume); "
                          "writes zipline's perf frame to DIR/perf.pickle")
    run.add_argument("--capital-base", type=float, default=1e7, metavar="CASH",
                     help="starting cash of a --zipline run (default 1e7, as zipline's)")
    run.add_argument("--data-frequency", choices=("daily", "minute"), default=None,
                     help="bars of a --zipline run: daily (default; stamped with the session's "
                          "date) or minute (stamped in UTC with the end of their minute, as "
                          "zipline stores them)")
    run.add_argument("--data", required=True, metavar="PATH",
                     help="bars: a parquet file, a directory of parquet files, a glob "
                          "('bars/*.parquet'), or a .csv, .tsv or Arrow IPC (.arrow, .ipc, "
                          ".feather) file; the format is read from the suffix")
    run.add_argument("--signals", metavar="PATH",
                     help="a separate signal (prediction) frame: parquet path/directory/glob, "
                          ".csv, .tsv or Arrow IPC, aligned point in time (see docs/signals.md)")
    run.add_argument("--context", metavar="PATH",
                     help="market-wide series (one row per timestamp): parquet, .csv, .tsv or "
                          "Arrow IPC")
    run.add_argument("--config", metavar="FILE",
                     help="BacktestConfig as a .toml, .yaml/.yml or .json file")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="a keyword argument of the strategy's constructor; VALUE is read as "
                          "JSON (10, 0.5, true, [1,2], \"text\") and otherwise as a string; "
                          "repeat for several")
    run.add_argument("--out", required=True, metavar="DIR",
                     help="output directory; must be new or empty (see --overwrite)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an earlier mlbacktest output in --out (a directory holding "
                          "anything else is refused even so)")
    feed = run.add_argument_group("data options")
    feed.add_argument("--signal-columns", metavar="A,B",
                      help="comma-separated signal columns (default: every numeric column "
                           "that is not a key or bar field)")
    feed.add_argument("--timestamp-column", default="timestamp", metavar="NAME",
                      help="timestamp column of the data, signals and context "
                           "(default 'timestamp')")
    feed.add_argument("--asset-column", default="asset", metavar="NAME",
                      help="asset column of the data and signals (default 'asset')")
    feed.add_argument("--available-at-column", metavar="NAME",
                      help="publication-time column of the signals")
    feed.add_argument("--signal-delay", metavar="DELAY",
                      help="delay signals by N bars (an integer) or a duration ('30m', '1d')")
    feed.add_argument("--embargo", metavar="DURATION",
                      help="a signal row is never visible before timestamp + DURATION")
    feed.add_argument("--start", metavar="TIME", help="first timestamp to read (parquet data)")
    feed.add_argument("--end", metavar="TIME", help="last timestamp to read (parquet data)")
    feed.add_argument("--assets", metavar="A,B", help="comma-separated assets to read "
                                                      "(parquet data)")
    feed.add_argument("--chunk", metavar="DURATION",
                      help="stream the parquet bars one time window at a time ('1d', '1w', "
                           "'6h'): memory bounded by the window (see docs/streaming.md)")
    out = run.add_argument_group("output options")
    out.add_argument("--progress", dest="progress", action="store_const", const=True,
                     default=None, help="show a progress bar (default: on a terminal, for "
                                        "runs longer than two seconds)")
    out.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                     help="never show a progress bar")
    out.add_argument("--no-report", action="store_true", help="write the results only")
    out.add_argument("--quiet", "-q", action="store_true",
                     help="do not print the summary (the paths written, and the number of "
                          "rejected orders when there are some, are still printed)")

    report = sub.add_parser(
        "report", parents=[common, report_opts], epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="rebuild the HTML report of a results directory",
        description="Read the results written by 'mlbacktest run' (or "
                    "BacktestResult.to_parquet) and write their HTML report.",
    )
    report.add_argument("results", metavar="RESULTS_DIR", help="a results directory")
    report.add_argument("--out", metavar="FILE",
                        help=f"where to write the report (default RESULTS_DIR/{REPORT_NAME})")
    _add_research_commands(sub, common)
    _add_live_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlbacktest`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: :data:`EXIT_OK`, :data:`EXIT_FAILURE` or :data:`EXIT_USAGE`.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args_list
    try:
        try:
            args = _parser().parse_args(args_list)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        with warnings.catch_warnings(), _sigterm_interrupts():
            warnings.showwarning = _show_warning
            if args.command == "demo":
                return _demo(args)
            if args.command == "run":
                return _run(args)
            if args.command in ("sweep", "walk-forward"):
                return _research(args)
            if args.command in ("paper", "live"):
                return _paper(args) if args.command == "paper" else _live(args)
            return _report(args)
    except CLIError as exc:
        if show_traceback:
            traceback.print_exc()
        _error(str(exc))
        return exc.status
    except _Terminated:
        _error("terminated by SIGTERM; nothing was written (earlier output is left as it was)")
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        _error("interrupted; nothing was written (earlier output is left as it was)")
        return EXIT_SIGINT
    except SystemExit as exc:  # sys.exit() in the strategy's code, outside the run
        return _exit_called(exc, "the strategy's code", show_traceback)
    except RecursionError as exc:
        if show_traceback:
            traceback.print_exc()
        _error(f"the input is nested too deeply to process ({exc})")
        return EXIT_FAILURE
    except Exception as exc:  # a lower layer failed in a way it does not document
        if show_traceback:
            traceback.print_exc()
        _error(f"unexpected {_describe(exc)} (run again with --traceback to see where)")
        return EXIT_FAILURE


class _Terminated(KeyboardInterrupt):
    """SIGTERM was received; raised from the signal handler, unwinds like Ctrl-C."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` for the block (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- #
# Reporting errors
# --------------------------------------------------------------------------- #
def _error(message: str) -> None:
    print(f"mlbacktest: error: {message}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    print(f"mlbacktest: warning: {category.__name__}: {message}", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (the type alone when the message is empty)."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _exit_called(exc: SystemExit, who: str, show_traceback: bool) -> int:
    """Report ``sys.exit()`` called by the user's code; return :data:`EXIT_FAILURE`."""
    if show_traceback:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    code = "" if exc.code is None else repr(exc.code)
    _error(f"{who} called sys.exit({code}); the run was stopped and nothing was written")
    if not show_traceback:
        for note in _notes(exc):
            print(f"  {note}", file=sys.stderr)
    return EXIT_FAILURE


def _notes(exc: BaseException) -> list[str]:
    notes = getattr(exc, "__notes__", None) or []
    return [str(n).removeprefix("mlbacktest: ") for n in notes]


def _fail(exc: BaseException, what: str, show_traceback: bool) -> int:
    """Report an exception raised by the user's inputs or code; return :data:`EXIT_FAILURE`."""
    if isinstance(exc, SystemExit):
        return _exit_called(exc, what.removesuffix(" raised"), show_traceback)
    if show_traceback:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    sep = " " if what.endswith(" raised") else ": "
    _error(f"{what}{sep}{_describe(exc)}")
    if not show_traceback:  # the traceback shows the notes already
        for note in _notes(exc):
            print(f"  {note}", file=sys.stderr)
        if what.endswith(" raised"):
            print("  (run again with --traceback to see the full traceback)", file=sys.stderr)
    return EXIT_FAILURE


# --------------------------------------------------------------------------- #
# Loading a strategy class
# --------------------------------------------------------------------------- #
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _split_spec(spec: str) -> tuple[str, str | None]:
    """``(module or path, class name or None)`` of ``path.py:Class`` / ``pkg.mod:Class``."""
    where, sep, name = spec.rpartition(":")
    # A Windows drive ("C:\\x.py") is not a class name.
    if not sep or (len(where) == 1 and name[:1] in ("\\", "/")):
        return spec, None
    if not name.isidentifier():
        raise CLIError(f"{name!r} in strategy {spec!r} is not a class name: write "
                       "path/to/file.py:ClassName or package.module:ClassName")
    if not where:
        raise CLIError(f"strategy {spec!r} names no file or module before ':'")
    return where, name


def _is_path(where: str) -> bool:
    return (where.endswith(".py") or "/" in where or os.sep in where
            or os.path.exists(where) or not _MODULE_NAME.fullmatch(where))


def _import_file(path: str) -> Any:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"strategy file {path!r} does not exist")
    if p.is_dir():
        raise CLIError(f"strategy file {path!r} is a directory, not a Python file")
    if p.suffix != ".py":
        raise CLIError(f"strategy file {path!r} is not a Python file (.py)")
    stem = re.sub(r"\W", "_", p.stem)
    name = f"_mlbacktest_strategy_{stem}"
    spec = importlib.util.spec_from_file_location(name, p.resolve())
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise CLIError(f"cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, SystemExit):
            raise _UserCodeError(exc, f"importing {path}") from exc
        raise _UserCodeError(exc, f"importing {path} raised") from exc
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        parts = name.split(".")
        if exc.name is not None and exc.name in {".".join(parts[:i + 1])
                                                 for i in range(len(parts))}:
            raise CLIError(f"no module named {exc.name!r} (a strategy is "
                           "path/to/file.py:ClassName or package.module:ClassName; modules "
                           "are found on sys.path and in the current directory)") from exc
        raise _UserCodeError(exc, f"importing {name} raised") from exc
    except Exception as exc:
        raise _UserCodeError(exc, f"importing {name} raised") from exc


class _UserCodeError(Exception):
    """An exception raised by the user's code (module import, constructor)."""

    def __init__(self, exc: BaseException, what: str) -> None:
        super().__init__(what)
        self.exc = exc
        self.what = what


def load_strategy_class(spec: str) -> type[Strategy]:
    """The strategy class named by ``path/to/file.py:ClassName`` or ``package.module:ClassName``.

    Parameters
    ----------
    spec : str
        A Python file or an importable module, then ``:`` and a class name.
        The class name may be left out when the module defines exactly one
        :class:`~mlbacktest.Strategy` subclass.

    Returns
    -------
    type
        The class, a subclass of :class:`~mlbacktest.Strategy`.

    Raises
    ------
    CLIError
        The file or module does not exist, is not Python, does not define
        the class, or the class is not a Strategy subclass (status 2); or
        importing the module raised (status 1).
    """
    try:
        return _load_strategy_class(spec)
    except _UserCodeError as exc:
        if isinstance(exc.exc, SystemExit):
            raise CLIError(f"{exc.what} called sys.exit({exc.exc.code!r})", EXIT_FAILURE) from None
        raise CLIError(f"{exc.what} {_describe(exc.exc)}", EXIT_FAILURE) from exc.exc


def _load_strategy_class(spec: str) -> type[Strategy]:
    """:func:`load_strategy_class`, raising ``_UserCodeError`` when importing raises."""
    from mlbacktest.strategy import Strategy

    where, name = _split_spec(spec)
    module = _import_file(where) if _is_path(where) else _import_module(where)
    origin = getattr(module, "__file__", None) or where
    if name is None:
        found = [v for k, v in vars(module).items()
                 if inspect.isclass(v) and issubclass(v, Strategy) and v is not Strategy
                 and v.__module__ == module.__name__ and not k.startswith("_")]
        if len(found) != 1:
            names = ", ".join(sorted(c.__name__ for c in found)) or "none"
            raise CLIError(f"{where} defines {len(found)} Strategy subclasses ({names}): "
                           f"name one as {where}:ClassName")
        return found[0]  # type: ignore[no-any-return]
    try:
        cls = getattr(module, name)
    except AttributeError:
        defined = sorted(k for k, v in vars(module).items()
                         if inspect.isclass(v) and issubclass(v, Strategy) and v is not Strategy)
        hint = f" (its Strategy subclasses: {', '.join(defined)})" if defined else ""
        raise CLIError(f"{origin} has no class {name!r}{hint}") from None
    if not inspect.isclass(cls):
        raise CLIError(f"{where}:{name} is a {type(cls).__name__}, not a class")
    if not issubclass(cls, Strategy) or cls is Strategy:
        raise CLIError(f"{where}:{name} is not a subclass of mlbacktest.Strategy")
    return cls


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"--param {item!r} is not KEY=VALUE with KEY a Python identifier")
        if key in params:
            raise CLIError(f"--param {key} is given twice")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
        except RecursionError:
            raise CLIError(f"--param {key}: the value is nested too deeply to read") from None
    return params


def _make_strategy(cls: type[Strategy], params: dict[str, Any]) -> Strategy:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins only
        sig = None
    if sig is not None:
        try:
            sig.bind(**params)
        except TypeError as exc:
            names = [p for p in sig.parameters.values()
                     if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            takes = ", ".join(p.name for p in names) or "no parameters"
            raise CLIError(f"{cls.__name__}({takes}): {exc} (check --param)") from None
    try:
        return cls(**params)
    except SystemExit as exc:
        raise _UserCodeError(exc, f"the strategy's constructor {cls.__name__}()") from exc
    except Exception as exc:
        raise _UserCodeError(exc, f"the strategy's constructor {cls.__name__}() raised") from exc


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def _check_exists(path: str, option: str) -> None:
    if set("*?[") & set(path):
        if not _glob.glob(path, recursive=True):
            raise CLIError(f"{option} {path!r}: no file matches the pattern")
    elif not os.path.exists(path):
        raise CLIError(f"{option} {path!r} does not exist")


def _check_format(path: str, option: str) -> None:
    """Refuse a file whose suffix names no format mlbacktest reads (a usage error)."""
    from mlbacktest.data.files import file_format
    from mlbacktest.errors import DataError

    try:
        file_format(path)
    except DataError as exc:
        raise CLIError(f"{option}: {exc}") from None


def _split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    return items or None


def _delay(text: str | None) -> int | str | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else text


def _build_feed(args: argparse.Namespace) -> Any:
    """The feed of ``run``'s data options (raises DataError, ConfigError, CLIError)."""
    from mlbacktest.data.feeds import open_feed
    from mlbacktest.data.files import file_format

    options: dict[str, Any] = {
        "signal_columns": _split_list(args.signal_columns),
        "timestamp_column": args.timestamp_column,
        "asset_column": args.asset_column,
        "available_at_column": args.available_at_column,
        "signal_delay": _delay(args.signal_delay),
        "embargo": args.embargo,
    }
    if args.signals is not None:
        file_format(args.signals)  # an unknown suffix fails before the bars are read
        options["signals"] = args.signals
    filters = {"start": args.start, "end": args.end, "assets": _split_list(args.assets),
               "chunk": args.chunk}
    fmt = file_format(args.data)
    if fmt != "parquet":
        given = [f"--{k}" for k, v in filters.items() if v is not None]
        if given:
            raise CLIError(f"{', '.join(given)}: these options need parquet data (--data is a "
                           f"{fmt.upper()} file)")
    return open_feed(args.data, **options, **{k: v for k, v in filters.items() if v is not None})


def _read_context(path: str, timestamp_column: str) -> Any:
    from mlbacktest.data.context import ContextFrame

    return ContextFrame(path, timestamp_column=timestamp_column)  # read by suffix


def _check_out_dir(out: str, overwrite: bool) -> Path:
    """``--out`` as a Path, once :func:`~mlbacktest.results.io.check_output_dir` accepts it."""
    from mlbacktest.results.io import check_output_dir

    if Path(out).exists() and not Path(out).is_dir() and not Path(out).is_symlink():
        raise CLIError(f"--out {out!r} is a file, not a directory")
    try:
        return check_output_dir(out, overwrite, "--out")
    except OSError as exc:
        raise CLIError(str(exc).replace("overwrite=True (--overwrite)", "--overwrite")) from None


def _check_time_options(args: argparse.Namespace) -> None:
    """Refuse malformed ``--start``, ``--end`` and ``--chunk`` values (usage errors)."""
    from mlbacktest.data.signals import parse_duration
    from mlbacktest.data.validate import bound_to_ns

    for option in ("start", "end"):
        value = getattr(args, option)
        if value is None:
            continue
        try:
            bound_to_ns(value, None, option)
        except Exception as exc:  # DataError, or whatever the parser raises
            raise CLIError(f"--{option} {value!r} is not a valid time (write an ISO 8601 date "
                           f"or time such as 2020-01-31 or 2020-01-31T09:30): "
                           f"{_describe(exc)}") from None
    if args.chunk is not None and args.chunk.strip().lower() != "all":
        try:
            ns = parse_duration(args.chunk, "--chunk")
        except Exception as exc:
            raise CLIError(f"--chunk {args.chunk!r} is not a duration such as '1d', '1w' or "
                           f"'6h': {_describe(exc)}") from None
        if ns <= 0:
            raise CLIError(f"--chunk {args.chunk!r} must be a positive duration ('1d', '1w', "
                           "'6h') or 'all'")


@contextmanager
def _on_path(*dirs: str) -> Iterator[None]:
    """Put directories first on ``sys.path`` (as ``python file.py`` does) for the block."""
    added = [d for d in dirs if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            if d in sys.path:
                sys.path.remove(d)


def _strategy_dirs(spec: str) -> list[str]:
    """The directories a strategy spec imports from: its file's directory first, then the cwd."""
    where = [os.getcwd()]
    strategy_file = _split_spec(spec)[0]
    if _is_path(strategy_file):
        where.insert(0, str(Path(strategy_file).resolve().parent))
    return where


def _load_class_and_config(args: argparse.Namespace) -> tuple[type[Strategy], Any] | int:
    """The strategy class of ``args.strategy`` and the ``args.config`` config.

    Call inside ``_on_path(*_strategy_dirs(args.strategy))``. Returns the exit status
    instead when the strategy file or the config cannot be loaded.
    """
    from mlbacktest.config import BacktestConfig
    from mlbacktest.errors import ConfigError

    tb = args.traceback
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
    return cls, config


def _load_strategy(args: argparse.Namespace, params: dict[str, Any]) -> tuple[Strategy, Any] | int:
    """The strategy instance (built with ``params``) and the config, or the exit status.

    Call inside ``_on_path(*_strategy_dirs(args.strategy))``.
    """
    loaded = _load_class_and_config(args)
    if isinstance(loaded, int):
        return loaded
    cls, config = loaded
    try:
        strategy = _make_strategy(cls, params)
    except _UserCodeError as exc:
        return _fail(exc.exc, exc.what, args.traceback)
    return strategy, config


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #
def _read_benchmark(path: str | None) -> Any:
    """The ``--benchmark`` frame (checked to exist beforehand), or None."""
    if path is None:
        return None
    import polars as pl

    from mlbacktest.data.files import scan_frame
    from mlbacktest.errors import DataError

    try:
        return scan_frame(path, try_parse_dates=True).collect()
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot read the benchmark {path}: {exc}") from exc


def _write_report(result: BacktestResult, path: Path, args: argparse.Namespace,
                  benchmark: Any) -> Path:
    options = {"title": args.title, "benchmark_name": args.benchmark_name}
    try:
        written = result.report(path, benchmark,
                                **{k: v for k, v in options.items() if v is not None})
    except ImportError as exc:
        hint = ", or pass --no-report" if args.command == "run" else ""
        raise CLIError(f"the report needs a package that is not installed ({exc}): "
                       f"pip install matplotlib{hint}", EXIT_FAILURE) from exc
    except (FileExistsError, IsADirectoryError) as exc:  # a link, or a file it did not write
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write the report to {str(path)!r}: {exc}", EXIT_FAILURE) from exc
    except ValueError as exc:  # DataError included: a benchmark that does not fit
        _fail(exc, "bad benchmark" if benchmark is not None else "cannot build the report",
              args.traceback)
        raise _Failed from exc
    return Path(written) if written is not None else path


def _metrics_error(exc: ArithmeticError, result: BacktestResult) -> CLIError:
    """The one-line error of metrics that overflow (an extreme ``periods_per_year``, say)."""
    return CLIError(f"cannot compute the metrics of the result (periods_per_year="
                    f"{result.periods_per_year:g}, initial_cash={result.initial_cash:g}): "
                    f"{_describe(exc)}", EXIT_FAILURE)


class _Failed(Exception):
    """The failure was reported already; exit with :data:`EXIT_FAILURE`."""


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #
def _demo(args: argparse.Namespace) -> int:
    from mlbacktest.demo import run_demo

    if args.assets < 10 or args.bars < 2:
        raise CLIError("the demo needs at least 10 assets (--assets) and 2 bars (--bars)")
    out = None if args.no_report else args.out
    try:
        run_demo(args.assets, args.bars, args.seed, out=out)
    except (FileExistsError, NotADirectoryError) as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write the demo's output: {exc}", EXIT_FAILURE) from exc
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from mlbacktest.engine import BacktestEngine
    from mlbacktest.errors import ConfigError, DataError

    tb = args.traceback
    if args.zipline is not None:
        return _run_zipline(args)
    if args.data_frequency is not None:
        raise CLIError("--data-frequency applies to a --zipline run only (a Strategy runs on "
                       "the bars it is given)")
    if args.strategy is None:
        raise CLIError("run needs a STRATEGY (file.py:ClassName) or --zipline ALGO.py "
                       "(see 'mlbacktest run --help')")
    # Usage errors (status 2) first, before anything slow runs.
    params = _parse_params(args.param)
    out = _check_out_dir(args.out, args.overwrite)
    _check_time_options(args)
    from mlbacktest.results.io import StagedDir

    for option in ("data", "signals", "context", "config", "benchmark"):
        if getattr(args, option) is not None:
            _check_exists(getattr(args, option), f"--{option}")
    for option in ("data", "signals", "context", "benchmark"):
        if getattr(args, option) is not None:
            _check_format(getattr(args, option), f"--{option}")
    with _on_path(*_strategy_dirs(args.strategy)):
        loaded = _load_strategy(args, params)
        if isinstance(loaded, int):
            return loaded
        strategy, config = loaded
        try:
            feed = _build_feed(args)
            context = (None if args.context is None
                       else _read_context(args.context, args.timestamp_column))
            engine = BacktestEngine(feed, strategy, config, context=context)
        except (DataError, ConfigError) as exc:
            return _fail(exc, "bad data" if isinstance(exc, DataError) else "bad option", tb)
        except FileNotFoundError as exc:
            raise CLIError(f"{exc.filename or exc}: no such file") from exc
        try:
            benchmark = None if args.no_report else _read_benchmark(args.benchmark)
        except DataError as exc:
            return _fail(exc, "bad benchmark", tb)
        # Results and report go to a new sibling directory, which replaces `out` only
        # once both are written: a failed or interrupted run leaves `out` as it was.
        try:
            staged = StagedDir(out, args.overwrite, "--out")
        except OSError as exc:  # the directory changed since it was checked
            raise CLIError(str(exc)) from None
        try:
            # the equity record and fills are written as the run goes
            result = engine.run(progress=args.progress, out=staged.path)
        except BaseException as exc:
            staged.abort()
            if isinstance(exc, SystemExit):
                return _exit_called(exc, "the strategy", tb)
            if isinstance(exc, OSError) and not _notes(exc):
                raise CLIError(f"cannot write the results to {str(out)!r}: {exc}",
                               EXIT_FAILURE) from exc
            if not isinstance(exc, Exception):
                raise
            return _fail(exc, "the strategy raised" if _notes(exc) else "the run failed", tb)
    try:
        if not args.quiet:
            result.summary()  # ends with the rejected orders and their reasons, if any
        elif result.rejection_reasons.height:
            print(result.rejection_text())
        if not args.no_report:
            _write_report(result, staged.path / REPORT_NAME, args, benchmark)
        staged.commit()
    except _Failed:
        return EXIT_FAILURE
    except ArithmeticError as exc:
        raise _metrics_error(exc, result) from exc
    except OSError as exc:
        raise CLIError(f"cannot write the results to {str(out)!r}: {exc}", EXIT_FAILURE) from exc
    finally:
        staged.abort()  # does nothing once committed
    print(f"results written to {out}{os.sep}")
    if not args.no_report:
        print(f"report written to {out / REPORT_NAME}")
    return EXIT_OK


#: ``run`` options a --zipline run has no use for (zipline algorithms set their own costs).
_NOT_ZIPLINE = ("signals", "context", "config", "chunk", "signal_columns", "available_at_column",
                "signal_delay", "embargo", "assets", "benchmark")


def _run_zipline(args: argparse.Namespace) -> int:
    """``mlbacktest run --zipline algo.py --data bars --out DIR``."""
    import pickle

    from mlbacktest.compat.zipline import (
        installed_as_zipline,
        load_algorithm,
        read_bars,
        run_algorithm,
    )
    from mlbacktest.errors import ConfigError, DataError, OrderError, PortingError

    tb = args.traceback
    if args.strategy is not None:
        raise CLIError(f"give either STRATEGY ({args.strategy}) or --zipline, not both")
    frequency = args.data_frequency or "daily"
    used = [o for o in _NOT_ZIPLINE if getattr(args, o, None) is not None]
    if args.param:
        used.insert(0, "param")
    if used:
        raise CLIError(f"--{used[0].replace('_', '-')} does not apply to a --zipline run (the "
                       "algorithm sets its costs with set_commission / set_slippage)")
    _check_exists(args.zipline, "--zipline")
    _check_exists(args.data, "--data")
    out = _check_out_dir(args.out, args.overwrite)
    # `zipline` is the shim for the whole run: the file may import from zipline inside its
    # functions too (a real zipline imported in this process is restored afterwards)
    with _on_path(str(Path(args.zipline).resolve().parent), os.getcwd()), \
            installed_as_zipline(replace=True):
        try:
            module = load_algorithm(args.zipline)
        except (PortingError, ImportError) as exc:
            return _fail(exc, f"cannot load the zipline algorithm {args.zipline}", tb)
        except Exception as exc:
            return _fail(exc, f"importing {args.zipline} raised", tb)
        try:
            bars = read_bars(args.data, minute=frequency == "minute")
            days = bars["timestamp"]
            start = args.start if args.start is not None else days.min()
            end = args.end if args.end is not None else days.max()
            perf = run_algorithm(
                start, end, module.initialize, args.capital_base,
                handle_data=getattr(module, "handle_data", None),
                before_trading_start=getattr(module, "before_trading_start", None),
                data=bars, data_frequency=frequency)
        except DataError as exc:
            return _fail(exc, "bad data", tb)
        except PortingError as exc:
            return _fail(exc, "not supported by the zipline shim", tb)
        except (ConfigError, OrderError) as exc:
            return _fail(exc, "the algorithm raised", tb)
        except Exception as exc:
            if isinstance(exc, SystemExit):
                return _exit_called(exc, "the algorithm", tb)
            return _fail(exc, "the algorithm raised", tb)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "perf.pickle"
    with open(path, "wb") as fh:
        pickle.dump(perf, fh)
    if not args.quiet:
        pv = perf["portfolio_value"]
        n = sum(len(t) for t in perf["transactions"])
        print(f"zipline algorithm {args.zipline}: {len(perf)} sessions "
              f"{perf.index[0].date()} .. {perf.index[-1].date()}, {n} transactions")
        print(f"portfolio value {pv.iloc[0]:,.2f} -> {pv.iloc[-1]:,.2f} "
              f"({pv.iloc[-1] / args.capital_base - 1:+.2%} on capital {args.capital_base:,.0f})")
    print(f"perf written to {path}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from mlbacktest.errors import DataError
    from mlbacktest.results import BacktestResult

    src = Path(args.results)
    if not src.exists():
        raise CLIError(f"results directory {args.results!r} does not exist")
    if not src.is_dir():
        raise CLIError(f"{args.results!r} is not a directory (give the directory that "
                       "'mlbacktest run --out' or BacktestResult.to_parquet wrote)")
    if args.benchmark is not None:
        _check_exists(args.benchmark, "--benchmark")
        _check_format(args.benchmark, "--benchmark")
    try:
        result = BacktestResult.from_parquet(src)
    except Exception as exc:
        return _fail(exc, f"cannot read the results in {args.results}", args.traceback)
    try:
        benchmark = _read_benchmark(args.benchmark)
    except DataError as exc:
        return _fail(exc, "bad benchmark", args.traceback)
    target = Path(args.out) if args.out is not None else src / REPORT_NAME
    if target.is_dir():
        target = target / REPORT_NAME
    try:
        path = _write_report(result, target, args, benchmark)
    except _Failed:
        return EXIT_FAILURE
    except ArithmeticError as exc:
        raise _metrics_error(exc, result) from exc
    print(f"report written to {path}")
    return EXIT_OK



# --------------------------------------------------------------------------- #
# Research: sweep and walk-forward
# --------------------------------------------------------------------------- #
_RESEARCH_EXAMPLES = """\
examples:
  mlbacktest sweep strategy.py:Cross --data bars.parquet --grid fast=5,10,20 \\
      --grid slow=30:90:10 --executor processes --out sweep/
  mlbacktest sweep strategy.py:Cross --data bars.parquet --grid fast=5,10 \\
      --executor dask://scheduler:8786 --out sweep/
  mlbacktest walk-forward strategy.py:Cross --data bars.parquet --grid fast=5,10,20 \\
      --grid slow=30:90:10 --train 504 --test 126 --purge 5 --out wf/

"""


def _add_research_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``sweep`` and ``walk-forward`` subcommands."""
    for name in ("sweep", "walk-forward"):
        wf = name == "walk-forward"
        cmd = sub.add_parser(
            name, parents=[common], epilog=_RESEARCH_EXAMPLES + _EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            help=("re-optimise a grid on rolling windows and stitch the out-of-sample runs"
                  if wf else "backtest a strategy class over a grid of parameters"),
            description=(
                "Walk forward: sweep the grid on each training window, run the best "
                "parameters on the next test window, and write the stitched out-of-sample "
                "result to --out." if wf else
                "Run one backtest per parameter set of the grid; print the best runs, the "
                "deflated Sharpe ratio and the probability of backtest overfitting, and "
                "write every run as it completes to --out (rerun the same command to resume)."),
        )
        cmd.add_argument("strategy", metavar="STRATEGY",
                         help="path/to/file.py:ClassName or package.module:ClassName")
        cmd.add_argument("--data", required=True, metavar="PATH",
                         help="bars: parquet (file, directory or glob, opened by each worker), "
                              "or .csv, .tsv, Arrow IPC (read once and sent to each worker)")
        cmd.add_argument("--grid", action="append", default=[], metavar="NAME=VALUES",
                         help="a parameter and its values: a list 'fast=5,10,20' (each read as "
                              "JSON, else as a string) or an inclusive range 'slow=30:90:10' "
                              "(start:stop:step); repeat for several (their product is run)")
        cmd.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                         help="a fixed keyword argument of the constructor, as for 'run'")
        cmd.add_argument("--config", metavar="FILE",
                         help="BacktestConfig as a .toml, .yaml/.yml or .json file")
        cmd.add_argument("--executor", default=None, metavar="WHERE",
                         help="'processes' (one per CPU), 'processes:N', or "
                              "'dask://HOST:PORT' (a Dask scheduler); default: this process")
        cmd.add_argument("--objective", default="sharpe", metavar="METRIC",
                         help="the metric that ranks the runs (default 'sharpe')")
        cmd.add_argument("--minimize", action="store_true",
                         help="the lowest objective is the best")
        if wf:
            cmd.add_argument("--train", required=True, metavar="N|DURATION",
                             help="training window: bars (an integer) or a duration ('365d')")
            cmd.add_argument("--test", required=True, metavar="N|DURATION",
                             help="test window: bars or a duration, as --train")
            cmd.add_argument("--step", metavar="N|DURATION",
                             help="shift between folds (default: --test)")
            cmd.add_argument("--anchored", action="store_true",
                             help="every training window starts at the first bar")
            cmd.add_argument("--purge", default="0", metavar="N|DURATION",
                             help="left out of the end of each training window")
            cmd.add_argument("--embargo", default="0", metavar="N|DURATION",
                             help="skipped between each training window and its test window")
            cmd.add_argument("--warmup", metavar="N|DURATION",
                             help="the out-of-sample run starts this long before the test "
                                  "window (default: at the training window's start); its "
                                  "hooks warm up there, its orders wait for the test window")
            cmd.add_argument("--out", metavar="DIR",
                             help="write the stitched out-of-sample result there (new or "
                                  "empty, see --overwrite)")
            cmd.add_argument("--folds", metavar="FILE",
                             help="write the fold table there (.csv or .parquet; a new file)")
            cmd.add_argument("--overwrite", action="store_true",
                             help="replace an earlier mlbacktest output in --out")
        else:
            cmd.add_argument("--out", metavar="DIR",
                             help="write each run there as it completes, the frame "
                                  "(sweep.parquet) and report.html; an interrupted sweep "
                                  "resumes when the same command is run again")
            cmd.add_argument("--keep-returns", action="store_true",
                             help="keep each run's returns: the PBO and its histogram")
            cmd.add_argument("--partitions", type=int, default=16, metavar="S",
                             help="partitions of the PBO (even, default 16)")
            cmd.add_argument("--heatmap", metavar="X,Y",
                             help="parameters of the report's heat map (default: the first "
                                  "two of the grid)")
            cmd.add_argument("--top", type=int, default=10, metavar="N",
                             help="print the N best runs (default 10)")
        feed = cmd.add_argument_group("data options")
        feed.add_argument("--signal-columns", metavar="A,B",
                          help="comma-separated signal columns")
        feed.add_argument("--timestamp-column", default="timestamp", metavar="NAME")
        feed.add_argument("--asset-column", default="asset", metavar="NAME")
        feed.add_argument("--start", metavar="TIME",
                          help="first timestamp to read (parquet data)")
        feed.add_argument("--end", metavar="TIME", help="last timestamp to read (parquet data)")
        feed.add_argument("--assets", metavar="A,B",
                          help="comma-separated assets to read (parquet data)")
        cmd.add_argument("--progress", dest="progress", action="store_const", const=True,
                         default=None, help="show a progress bar (default: on a terminal)")
        cmd.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                         help="never show a progress bar")


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _grid_values(name: str, text: str) -> list[Any]:
    """The values of one ``--grid NAME=VALUES``: a comma list or an inclusive range."""
    if ":" in text and "," not in text:
        parts = text.split(":")
        if len(parts) != 3 or not all(_NUMBER.fullmatch(p.strip()) for p in parts):
            raise CLIError(f"--grid {name}={text}: a range is START:STOP:STEP with three "
                           "numbers, as in slow=30:90:10")
        nums = [json.loads(p.strip()) if re.fullmatch(r"[+-]?\d+", p.strip())
                else float(p) for p in parts]
        start, stop, step = nums
        if not step > 0 or stop < start:
            raise CLIError(f"--grid {name}={text}: the step must be positive and STOP >= "
                           "START")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > 100_000:
            raise CLIError(f"--grid {name}={text}: {count} values; at most 100,000")
        if all(isinstance(v, int) for v in nums):
            return [start + i * step for i in range(count)]
        # As written: 0.1:0.3:0.1 is 0.1, 0.2, 0.3 (not 0.30000000000000004).
        digits = 12 if any("e" in p.lower() for p in parts) else max(
            len(p.strip().partition(".")[2]) for p in parts)
        return [round(float(start + i * step), digits) for i in range(count)]
    items = [x.strip() for x in text.split(",")]
    if not text.strip() or any(not x for x in items):
        raise CLIError(f"--grid {name}={text}: give the values separated by commas, as in "
                       "fast=5,10,20 (no empty value)")
    values: list[Any] = []
    for item in items:
        try:
            values.append(json.loads(item))
        except ValueError:
            values.append(item)
    return values


def _parse_grid(items: Sequence[str], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    if not items:
        raise CLIError("give at least one --grid NAME=VALUES (as in --grid fast=5,10,20)")
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"--grid {item!r} is not NAME=VALUES with NAME a Python identifier")
        if key in grid:
            raise CLIError(f"--grid {key} is given twice")
        if key in fixed:
            raise CLIError(f"{key} is given both by --grid and by --param")
        grid[key] = _grid_values(key, text)
    from mlbacktest.research import expand_grid

    try:
        return [{**fixed, **p} for p in expand_grid(grid)]
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None


def _span_arg(text: str | None, option: str) -> Any:
    """An integer (bars) or a duration string of ``--train`` and the like."""
    if text is None:
        return None
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    from mlbacktest._time import parse_duration

    try:
        parse_duration(text, option)
    except Exception as exc:
        raise CLIError(f"{option} {text!r} is neither a number of bars nor a duration such as "
                       f"'30d': {_describe(exc)}") from None
    return text


def _research(args: argparse.Namespace) -> int:
    from mlbacktest.errors import ConfigError, DataError
    from mlbacktest.research.executors import parse_executor

    tb = args.traceback
    fixed = _parse_params(args.param)
    params = _parse_grid(args.grid, fixed)
    try:
        parse_executor(args.executor)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"--executor: {exc}") from None
    args.chunk = None
    _check_time_options(args)
    for option in ("data", "config"):
        if getattr(args, option) is not None:
            _check_exists(getattr(args, option), f"--{option}")
    _check_format(args.data, "--data")
    from mlbacktest.data.files import file_format

    filters = {"start": args.start, "end": args.end, "assets": _split_list(args.assets)}
    fmt = file_format(args.data)
    given = [f"--{k}" for k, v in filters.items() if v is not None]
    if fmt != "parquet" and given:
        raise CLIError(f"{', '.join(given)}: these options need parquet data (--data is a "
                       f"{fmt.upper()} file)")
    options = {"signal_columns": _split_list(args.signal_columns),
               "timestamp_column": args.timestamp_column, "asset_column": args.asset_column,
               **{k: v for k, v in filters.items() if v is not None}}
    wf = args.command == "walk-forward"
    if wf:
        spans = {k: _span_arg(getattr(args, k), f"--{k}")
                 for k in ("train", "test", "step", "purge", "embargo", "warmup")}
        if args.out is not None:
            _check_out_dir(args.out, args.overwrite)
        if args.folds is not None:
            if not args.folds.endswith((".csv", ".parquet")):
                raise CLIError(f"--folds {args.folds!r}: give a .csv or .parquet file")
            if os.path.lexists(args.folds):
                raise CLIError(f"--folds {args.folds!r} exists; mlbacktest writes the fold "
                               "table to a new file only")
    else:
        if args.partitions < 2 or args.partitions % 2:
            raise CLIError(f"--partitions {args.partitions}: an even number >= 2")
        if args.top < 0:
            raise CLIError(f"--top {args.top}: must be >= 0")
        heat = _split_list(args.heatmap)
        if heat is not None and (len(heat) != 2 or any(h not in params[0] for h in heat)):
            raise CLIError(f"--heatmap {args.heatmap!r}: give two parameters of the grid, as "
                           f"in --heatmap {','.join(list(params[0])[:2])}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    with _on_path(*_strategy_dirs(args.strategy)):
        loaded = _load_class_and_config(args)
        if isinstance(loaded, int):
            return loaded
        cls, config = loaded
        try:
            if wf:
                return _walk_forward_command(args, cls, params, config, options, spans,
                                             progress)
            return _sweep_command(args, cls, params, config, options, progress)
        except (DataError, ConfigError) as exc:
            return _fail(exc, "bad data" if isinstance(exc, DataError) else "bad option", tb)
        except FileNotFoundError as exc:
            raise CLIError(f"{exc.filename or exc}: no such file") from exc
        except (FileExistsError, NotADirectoryError) as exc:
            raise CLIError(str(exc)) from None
        except OSError as exc:  # a Dask scheduler that cannot be reached, say
            raise CLIError(f"{_describe(exc)}", EXIT_FAILURE) from exc
        except ValueError as exc:  # a changed grid in --out, a bad objective, no fold fits
            raise CLIError(str(exc), EXIT_FAILURE) from None


def _sweep_command(args: argparse.Namespace, cls: Any, params: list[dict[str, Any]],
                   config: Any, options: dict[str, Any], progress: bool) -> int:
    import polars as pl

    from mlbacktest.research import sweep

    try:
        result = sweep(cls, params, args.data, config, executor=args.executor, out=args.out,
                       progress=progress, keep_returns=args.keep_returns,
                       feed_options=options)
    except KeyboardInterrupt as exc:
        if args.out is None:
            raise
        _error(f"{'terminated by SIGTERM' if isinstance(exc, _Terminated) else 'interrupted'}"
               f"; the finished runs are in {args.out}: run the same command again to resume")
        return EXIT_SIGTERM if isinstance(exc, _Terminated) else EXIT_SIGINT
    frame = result.frame
    objective = args.objective
    if objective not in frame.columns:
        raise CLIError(f"--objective {objective!r} is not a metric of the sweep",
                       EXIT_FAILURE)
    shown = frame.filter(pl.col("status") == "ok").sort(
        objective, descending=not args.minimize, nulls_last=True).head(args.top)
    keep = ["run", *params[0], objective, "total_return", "max_drawdown", "num_trades"]
    with pl.Config(tbl_rows=args.top, tbl_hide_dataframe_shape=True):
        print(shown.select([c for c in dict.fromkeys(keep) if c in frame.columns]))
    failed = frame.filter(pl.col("status") != "ok")
    if failed.height:
        print(f"{failed.height} of {frame.height} runs failed; the first: run "
              f"{failed['run'][0]}: {failed['error'][0]}")
    try:
        d = result.deflated_sharpe()
        print(f"deflated Sharpe ratio of the best run: {d['dsr']:.4f} ({d['n_trials']:.0f} "
              f"trials, {d['n_obs']:.0f} returns)")
    except ValueError as exc:
        print(f"deflated Sharpe ratio: not available ({exc})")
    if result.returns is not None and frame.height - failed.height >= 2:
        try:
            print(f"probability of backtest overfitting: {result.pbo(args.partitions).pbo:.3f} "
                  f"({args.partitions} partitions)")
        except ValueError as exc:
            print(f"probability of backtest overfitting: not available ({exc})")
    if args.out is not None:
        pair = _split_list(args.heatmap)
        heat: list[str | None] = [None, None] if pair is None else list(pair)
        try:
            report = result.report(Path(args.out) / REPORT_NAME, x=heat[0], y=heat[1],
                                   metric=objective, n_partitions=args.partitions)
        except ImportError as exc:
            raise CLIError(f"the report needs a package that is not installed ({exc}): "
                           "pip install matplotlib", EXIT_FAILURE) from exc
        print(f"sweep written to {args.out}{os.sep}")
        print(f"report written to {report}")
    return EXIT_OK


def _walk_forward_command(args: argparse.Namespace, cls: Any, params: list[dict[str, Any]],
                          config: Any, options: dict[str, Any], spans: dict[str, Any],
                          progress: bool) -> int:
    import polars as pl

    from mlbacktest.research import walk_forward

    out = walk_forward(cls, params, args.data, config, executor=args.executor,
                       progress=progress, feed_options=options, anchored=args.anchored,
                       objective=args.objective, maximize=not args.minimize,
                       **{k: v for k, v in spans.items() if v is not None})
    keep = ["fold", "test_start", "test_end", *params[0], f"is_{args.objective}",
            f"oos_{args.objective}"]
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True):
        print(out.folds.select([c for c in dict.fromkeys(keep) if c in out.folds.columns]))
    m = out.result.metrics
    print(f"out of sample: total return {format_metric_text('total_return', m)}, Sharpe "
          f"{format_metric_text('sharpe', m)}, max drawdown "
          f"{format_metric_text('max_drawdown', m)}")
    if args.out is not None:
        out.result.to_parquet(args.out, overwrite=args.overwrite)
        print(f"out-of-sample result written to {args.out}{os.sep}")
    if args.folds is not None:
        import io

        buf = io.BytesIO()
        if args.folds.endswith(".parquet"):
            out.folds.write_parquet(buf)
        else:
            out.folds.write_csv(buf)
        with open(args.folds, "xb") as f:
            f.write(buf.getvalue())
        print(f"fold table written to {args.folds}")
    return EXIT_OK


def format_metric_text(name: str, metrics: dict[str, Any]) -> str:
    """``metrics[name]`` formatted as in the summary."""
    from mlbacktest.results.metrics import format_metric

    return format_metric(name, metrics[name])

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# --------------------------------------------------------------------------- #
# Paper and live trading (mlbacktest.live)
# --------------------------------------------------------------------------- #
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


def _live_speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a number or 'inf', got {text!r}") \
            from None
    if math.isnan(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"--speed must be > 0 (or 'inf'), got {text!r}")
    return value


def _live_options(cmd: argparse.ArgumentParser) -> None:
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


def _add_live_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``paper`` and ``live`` to the subcommands of the ``mlbacktest`` parser."""
    paper = sub.add_parser(
        "paper", parents=[common], epilog=_PAPER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="paper-trade a strategy class on a replay of recorded bars",
        description="Run a Strategy subclass as a live run on a replay of recorded bars "
                    "(ReplayFeed), filled on paper by the backtest's broker, and write its "
                    "journal and result to --out.")
    _live_options(paper)
    paper.add_argument("--replay", required=True, metavar="PATH",
                       help="bars to replay: parquet, .csv, .tsv or Arrow IPC")
    paper.add_argument("--speed", type=_live_speed, default=math.inf, metavar="X",
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
    _live_options(live)
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


def _kill_switch_options(args: argparse.Namespace) -> dict[str, Any] | None:
    names = ("max_loss", "max_loss_fraction", "max_orders_per_minute", "max_position",
             "max_position_value")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return given or None


def _prepare_live(args: argparse.Namespace) -> Any:
    """Usage checks, then the strategy class, config and instance (or an exit status)."""
    from mlbacktest.errors import ConfigError
    from mlbacktest.live.killswitch import KillSwitches

    params = _parse_params(args.param)
    try:
        kill = KillSwitches.coerce(_kill_switch_options(args))
    except ConfigError as exc:
        raise CLIError(str(exc)) from None
    if args.config is not None:
        _check_exists(args.config, "--config")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a directory")
    where = _strategy_dirs(args.strategy)
    with _on_path(*where):
        loaded = _load_strategy(args, params)
    if isinstance(loaded, int):
        return loaded
    strategy, config = loaded
    return strategy, config, kill, out, where


def _execute_live(args: argparse.Namespace, make_engine: Any, where: list[str], out: Path) -> int:
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


def _paper(args: argparse.Namespace) -> int:
    """``mlbacktest paper``: a replay, filled on paper."""
    from mlbacktest.live.engine import LiveEngine, PaperBroker
    from mlbacktest.live.replay import ReplayFeed

    _check_exists(args.replay, "--replay")
    _check_format(args.replay, "--replay")
    prepared = _prepare_live(args)
    if isinstance(prepared, int):
        return prepared
    strategy, config, kill, out, where = prepared

    def make() -> LiveEngine:
        feed = ReplayFeed(args.replay, speed=args.speed,
                          signal_columns=_split_list(args.signal_columns), start=args.start)
        return LiveEngine(feed, strategy, config, broker=PaperBroker(), run_id=args.run_id,
                          kill_switches=kill)

    return _execute_live(args, make, where, out)


def _live(args: argparse.Namespace) -> int:
    """``mlbacktest live``: the broker's stream and the broker's orders."""
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
    prepared = _prepare_live(args)
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

    return _execute_live(args, make, where, out)
