"""A zipline-style pipeline algorithm: every supported pipeline term, run unmodified by
zipline and the shim.

Returns, SimpleMovingAverage, AverageDollarVolume, RSI, ``.latest``, arithmetic,
comparisons, ``rank`` / ``top`` / ``bottom`` with masks, ``&`` ``|`` ``~`` and a screen;
the output is read in before_trading_start and in a scheduled function.
"""

from zipline.api import (
    attach_pipeline,
    date_rules,
    order_target_percent,
    pipeline_output,
    record,
    schedule_function,
)
from zipline.pipeline import Pipeline
from zipline.pipeline.data import USEquityPricing
from zipline.pipeline.factors import (
    RSI,
    AverageDollarVolume,
    Returns,
    SimpleMovingAverage,
)


def make_pipeline():
    close = USEquityPricing.close.latest
    sma = SimpleMovingAverage(inputs=[USEquityPricing.close], window_length=10)
    trend = close / sma - 1.0
    liquid = AverageDollarVolume(window_length=5) > 1e6
    momentum = Returns(window_length=8)
    rsi = RSI(window_length=9)
    universe = liquid & ~(rsi > 85)
    return Pipeline(
        columns={
            "trend": trend,
            "momentum": momentum,
            "rank": momentum.rank(mask=universe),
            "longs": momentum.top(2, mask=universe),
            "shorts": momentum.bottom(2, mask=universe) | (trend < -0.08),
            "best": trend.top(1),
        },
        screen=universe | (rsi < 30),
    )


def initialize(context):
    attach_pipeline(make_pipeline(), "screen")
    schedule_function(trade, date_rules.week_start(days_offset=1))


def before_trading_start(context, data):
    context.out = pipeline_output("screen")


def trade(context, data):
    out = pipeline_output("screen")
    assert out.equals(context.out)
    for asset in out.index[out.longs]:
        order_target_percent(asset, 0.25)
    for asset in out.index[out.shorts & ~out.longs]:
        order_target_percent(asset, -0.1)
    for asset in context.portfolio.positions:
        if asset not in out.index or not (out.longs[asset] or out.shorts[asset]):
            order_target_percent(asset, 0.0)
    record(n=len(out), rank_sum=out["rank"].sum(), trend_mean=out.trend.mean(),
           best=out.index[out.best][0].symbol if out.best.any() else "")
