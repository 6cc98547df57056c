"""Cost models from and to configuration values (numbers and tables).

``BacktestConfig`` accepts a number, a table (mapping) or a model object for
each cost; these helpers turn any of them into a model, and a built-in model
back into a table. A table names its model with the ``"model"`` key (see
:data:`COMMISSION_MODELS` / :data:`SLIPPAGE_MODELS`); the other keys are the
model's constructor arguments. Without ``"model"``, a commission table is the
general linear schedule (:class:`CommissionModel`) and a slippage table is
:class:`SlippageModel` (fixed bps).

Examples
--------
>>> commission_from_config(0.001)
PercentageCommission(rate=0.001, minimum=0.0, maximum=inf)
>>> commission_from_config({"per_share": 0.005, "minimum": 1.0})
CommissionModel(rate=0.0, per_share=0.005, fixed=0.0, minimum=1.0, maximum=inf, max_fraction=inf)
>>> slippage_from_config({"model": "sqrt_impact", "k": 0.5, "sigma": 0.02}).k
0.5
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Literal

from mlbacktest.errors import ConfigError
from mlbacktest.models._compiled import _costs
from mlbacktest.models.commission import CommissionModel, PercentageCommission
from mlbacktest.models.slippage import FixedBpsSlippage, SlippageModel

__all__ = [
    "COMMISSION_MODELS",
    "SLIPPAGE_MODELS",
    "commission_from_config",
    "slippage_from_config",
    "model_from_config",
    "model_to_config",
]

#: Table name (the ``"model"`` key) -> built-in commission class.
COMMISSION_MODELS: dict[str, type[CommissionModel]] = dict(_costs.COMMISSION_MODELS)
#: Table name (the ``"model"`` key) -> built-in slippage class.
SLIPPAGE_MODELS: dict[str, type[SlippageModel]] = dict(_costs.SLIPPAGE_MODELS)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _from_table(
    kind: str, table: Mapping[str, Any], registry: dict[str, type], default: str
) -> Any:
    kwargs = dict(table)
    name = kwargs.pop("model", default)
    cls = registry.get(name)
    if cls is None:
        raise ConfigError(f"unknown {kind} model {name!r}; known models are {sorted(registry)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad {kind} table for model {name!r}: {exc}") from None


def commission_from_config(value: Any) -> CommissionModel:
    """A commission model from a config value.

    Parameters
    ----------
    value : float, mapping or CommissionModel
        A number is a fraction of traded value (:class:`PercentageCommission`);
        a mapping is a table (``{"per_share": 0.005, "minimum": 1.0}``, or
        with a ``"model"`` key such as ``"tiered"``); a model is returned as is.

    Raises
    ------
    ConfigError
        Unknown model name or key, bad parameter, or a value of another type.
    """
    if isinstance(value, CommissionModel):
        return value
    if _is_number(value):
        return PercentageCommission(float(value))
    if isinstance(value, Mapping):
        return _from_table("commission", value, COMMISSION_MODELS, "linear")
    raise ConfigError(
        "commission must be a number (fraction of traded value), a table or a "
        f"CommissionModel, got {value!r}"
    )


def slippage_from_config(value: Any) -> SlippageModel:
    """A slippage model from a config value.

    Parameters
    ----------
    value : float, mapping or SlippageModel
        A number is basis points (:class:`FixedBpsSlippage`); a mapping is a
        table (``{"bps": 5}``, or with a ``"model"`` key such as
        ``"almgren_chriss"``); a model is returned as is.

    Raises
    ------
    ConfigError
        Unknown model name or key, bad parameter, or a value of another type.
    """
    if isinstance(value, SlippageModel):
        return value
    if _is_number(value):
        return FixedBpsSlippage(float(value))
    if isinstance(value, Mapping):
        return _from_table("slippage", value, SLIPPAGE_MODELS, "bps")
    raise ConfigError(
        f"slippage must be a number of basis points, a table or a SlippageModel, got {value!r}"
    )


def model_from_config(value: Any, kind: Literal["commission", "slippage"]) -> Any:
    """:func:`commission_from_config` or :func:`slippage_from_config`, by ``kind``."""
    if kind == "commission":
        return commission_from_config(value)
    if kind == "slippage":
        return slippage_from_config(value)
    raise ConfigError(f"kind must be 'commission' or 'slippage', got {kind!r}")


def model_to_config(value: Any) -> Any:
    """A config value back as plain data: a built-in model as its table, a number as is.

    Raises
    ------
    ConfigError
        For a Python subclass (it has no table form).
    """
    if isinstance(value, (CommissionModel, SlippageModel)):
        return value.to_config()
    return value
