"""mlbacktest.errors.suggest and did_you_mean: close matches for a misspelt name.

The strategy's asset lookup (``unknown asset 'TSLA'``) and the data layer's
column checks build their hints with these.
"""

from __future__ import annotations

from mlbacktest.errors import did_you_mean, suggest


def test_case_variant_comes_first_then_close_matches():
    assert suggest("Close", ["open", "high", "low", "close"]) == ["close"]
    assert suggest("AAPL", ["aapl", "AAPL.O", "MSFT"]) == ["aapl", "AAPL.O"]
    assert suggest("TSLA", ["AAPL", "MSFT", "TSL"]) == ["TSL"]
    assert suggest("DATE", ["Date", "date", "timestamp"]) == ["Date", "date"]


def test_nothing_close_and_the_name_itself_are_not_suggested():
    assert suggest("TSLA", ["AAPL", "MSFT"]) == []
    assert suggest("close", ["close"]) == []
    assert suggest("x", []) == []


def test_at_most_n_and_deterministic():
    names = [f"A{i:03d}" for i in range(100)]
    first = suggest("A0O1", names, n=2)
    assert len(first) == 2 and first == suggest("A0O1", list(names), n=2)


def test_did_you_mean_lists_what_is_available():
    assert did_you_mean("aapl", ["MSFT", "AAPL"], "assets") == (
        "did you mean 'AAPL'? available assets: 'AAPL', 'MSFT'")
    assert did_you_mean("TSLA", ["MSFT", "AAPL"], "assets") == (
        "available assets: 'AAPL', 'MSFT'")
    many = did_you_mean("ZZZ", [f"A{i:02d}" for i in range(25)], "assets", limit=3)
    assert many == "available assets: 'A00', 'A01', 'A02', ... and 22 more"
    assert did_you_mean("x", [], "assets") == "no assets are available"
