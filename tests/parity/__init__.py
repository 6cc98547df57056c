"""Parity tests: mlbacktest against backtrader and vectorbt on seeded scenarios."""
