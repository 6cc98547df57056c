"""``bt.sizers``: FixedSize, PercentSizer, AllInSizer (and their ``Int`` variants)."""

from ._core import (
    AllInSizer,
    AllInSizerInt,
    FixedSize,
    PercentSizer,
    PercentSizerInt,
    Sizer,
    SizerFix,
)

__all__ = ["Sizer", "FixedSize", "SizerFix", "PercentSizer", "AllInSizer", "PercentSizerInt",
           "AllInSizerInt"]
