"""``mlbacktest paper`` / ``mlbacktest live`` and the credentials helper."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from mlbacktest import BacktestConfig, BacktestEngine, PolarsDataFeed
from mlbacktest.cli import main
from mlbacktest.live.credentials import CredentialsError, load_credentials
from mlbacktest.results import BacktestResult
from tests.live_strategies import gappy_bars
from tests.test_live_paper import assert_same_run

STRATEGY = textwrap.dedent("""
    import numpy as np
    from mlbacktest import Strategy

    class Flip(Strategy):
        def __init__(self, size=3):
            self.size = size

        def on_market_data(self, event, context):
            p = event.signals["pred"]
            if np.isnan(p):
                return
            target = self.size if p > 0 else 0
            self.order_target_quantity(event.asset, target)
""")


@pytest.fixture
def files(tmp_path):
    df = gappy_bars(seed=13, n_bars=50)
    data = tmp_path / "bars.parquet"
    df.write_parquet(data)
    strat = tmp_path / "flip.py"
    strat.write_text(STRATEGY)
    return df, data, strat


def test_paper_command_equals_the_backtest(files, tmp_path, capsys):
    df, data, strat = files
    out = tmp_path / "run"
    code = main(["paper", f"{strat}:Flip", "--replay", str(data), "--speed", "inf",
                 "--param", "size=4", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "journal written" in printed and "results written" in printed
    res = BacktestResult.from_parquet(out / "result")
    sys.path.insert(0, str(tmp_path))
    try:
        import flip  # the same class, imported here
    finally:
        sys.path.remove(str(tmp_path))
    bt = BacktestEngine(PolarsDataFeed(df), flip.Flip(size=4), BacktestConfig()).run(
        progress=False)
    assert bt.fills.height > 3
    assert_same_run(bt, res)
    assert (out / "journal.jsonl").exists()


def test_paper_command_kill_switch_and_usage_errors(files, tmp_path, capsys):
    df, data, strat = files
    code = main(["paper", str(strat), "--replay", str(data), "--out", str(tmp_path / "k"),
                 "--max-orders-per-minute", "1", "-q"])
    assert code == 0
    assert "stopped by a kill switch: max_orders_per_minute" in capsys.readouterr().out
    assert main(["paper", str(strat), "--replay", str(tmp_path / "nope.parquet"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["paper", str(strat), "--replay", str(data), "--speed", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert main(["paper", str(strat), "--replay", str(data), "--max-loss", "-5",
                 "--out", str(tmp_path / "x")]) == 2
    assert "max_loss" in capsys.readouterr().err


def test_live_command_needs_explicit_confirmation_for_real_money(files, tmp_path, capsys):
    _, _, strat = files
    base = ["live", str(strat), "--broker", "alpaca", "--symbols", "AAPL",
            "--out", str(tmp_path / "l")]
    assert main(base + ["--live-money"]) == 2
    assert "--i-understand" in capsys.readouterr().err
    assert main(base + ["--i-understand"]) == 2


def test_live_command_without_alpaca_py_names_the_extra(files, tmp_path, capsys, monkeypatch):
    _, _, strat = files
    monkeypatch.setitem(sys.modules, "alpaca", None)  # as if alpaca-py were not installed
    code = main(["live", str(strat), "--broker", "alpaca", "--symbols", "AAPL",
                 "--out", str(tmp_path / "l")])
    assert code == 1
    assert "mlbacktest[alpaca]" in capsys.readouterr().err


def test_credentials_from_a_private_file_or_the_environment(tmp_path):
    f = tmp_path / "creds"
    f.write_text("# alpaca\nAPCA_API_KEY_ID=AKTEST\nexport APCA_API_SECRET_KEY='s3cr3t'\n")
    os.chmod(f, 0o600)
    c = load_credentials(f)
    assert (c.key_id, c.secret_key) == ("AKTEST", "s3cr3t")
    assert "s3cr3t" not in repr(c) and "AKTEST" not in str(c)
    j = tmp_path / "creds.json"
    j.write_text('{"APCA_API_KEY_ID": "K", "APCA_API_SECRET_KEY": "S"}')
    os.chmod(j, 0o400)
    assert load_credentials(j).secret_key == "S"
    env = {"APCA_API_KEY_ID": "K2", "APCA_API_SECRET_KEY": "S2"}
    assert load_credentials(env=env).key_id == "K2"
    with pytest.raises(CredentialsError, match="APCA_API_SECRET_KEY not set"):
        load_credentials(env={"APCA_API_KEY_ID": "K2"})


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_credentials_file_readable_by_others_is_refused(tmp_path, mode):
    f = tmp_path / "creds"
    f.write_text("APCA_API_KEY_ID=AKTEST\nAPCA_API_SECRET_KEY=s3cr3t\n")
    os.chmod(f, mode)
    with pytest.raises(CredentialsError, match=r"chmod 600") as info:
        load_credentials(f)
    assert f"{mode:04o}" in str(info.value) and "s3cr3t" not in str(info.value)


def test_credentials_errors_never_show_values(tmp_path):
    f = tmp_path / "creds"
    f.write_text("APCA_API_KEY_ID s3cr3t\n")
    os.chmod(f, 0o600)
    with pytest.raises(CredentialsError) as info:
        load_credentials(f)
    assert "s3cr3t" not in str(info.value) and "line 1" in str(info.value)
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials(tmp_path / "missing")
