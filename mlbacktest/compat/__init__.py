"""Porting assistants: run strategies written for other engines on mlbacktest.

Each assistant translates another engine's API onto :class:`~mlbacktest.Strategy`
hooks and helpers. It covers the calls strategies actually use; a call outside
that subset raises :class:`PortingError` (a :class:`NotImplementedError`)
naming the call and the mlbacktest way to do it, so nothing runs with quietly
different behaviour.

- :mod:`mlbacktest.compat.zipline`: zipline's ``initialize`` / ``handle_data``
  algorithms, ``zipline.api`` and ``run_algorithm`` (docs/porting/zipline.md).
- :mod:`mlbacktest.compat.backtrader`: backtrader's ``Cerebro`` / ``bt.Strategy``
  with indicators as lines, sizers and analyzers (docs/porting/backtrader.md).
"""

from mlbacktest.errors import PortingError

__all__ = ["PortingError"]
