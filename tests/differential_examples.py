"""Scenarios of ``test_engine_matches_reference`` that fresh random runs found diverging.

Each was a disagreement between the compiled broker and the reference
broker, fixed since; ``test_differential.py`` replays every one of them
(``@example``) on every run, derandomized or fresh, before the drawn
examples. Add a scenario here (as printed by Hypothesis' "Falsifying
example") when a fresh run finds one, together with a hand-written case
that pins the rule.
"""

from __future__ import annotations

import math

from conftest import Panel

FOUND: list[dict] = [
    # Duration latency with a volume cap: a child freed in transit when its partly
    # filled parent is rejected while a bar trades keeps its own arrival.
    dict(
        panel=Panel(
            ['A0', 'A1'],
            [1704139200000000000, 1704146400000000000, 1704319200000000000, 1704348000000000000,
             1704358800000000000, 1704387600000000000, 1704394800000000000, 1704423600000000000,
             1704510000000000000, 1704596400000000000, 1704618000000000000, 1704646800000000000,
             1704668400000000000, 1704686400000000000, 1704715200000000000, 1704801600000000000,
             1704808800000000000],
            [[(0, 8.5, 8.75, 8.5, 8.5, 500.0), (1, 19.5, 19.75, 19.25, 19.5, 500.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 100.0), (1, 19.5, 19.75, 19.5, 19.5, 100.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 20.0), (1, 19.5, 19.75, 19.25, 19.5, 20.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 3000.0), (1, 19.5, 19.75, 19.0, 19.25, 100.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 100.0), (1, 19.25, 19.25, 19.25, 19.25, 100.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 3000.0), (1, 19.25, 19.75, 19.0, 19.5, 500.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 100.0), (1, 19.5, 19.75, 19.25, 19.5, 3000.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 500.0), (1, 19.5, 19.5, 19.25, 19.5, 100.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 100.0), (1, 19.5, 19.75, 19.25, 19.5, 20.0)],
             [(0, 8.5, 8.75, 8.5, 8.5, 20.0), (1, 19.5, 19.75, 19.5, 19.75, 0.0)],
             [(0, 8.5, 8.75, 8.5, 8.5, 0.0), (1, 19.75, 19.75, 19.5, 19.75, 20.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 20.0), (1, 19.75, 19.75, 19.75, 19.75, 3000.0)],
             [(0, 8.5, 8.75, 8.5, 8.5, 3000.0), (1, 19.75, 19.75, 19.75, 19.75, 3000.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 500.0), (1, 19.75, 19.75, 19.75, 19.75, 20.0)],
             [(0, 8.5, 8.5, 8.25, 8.5, 20.0), (1, 19.75, 20.25, 19.75, 20.0, 3000.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 500.0), (1, 20.0, 20.0, 19.75, 20.0, 3000.0)],
             [(0, 8.5, 8.75, 8.25, 8.5, 20.0), (1, 20.0, 20.5, 20.0, 20.25, 20.0)]],
            0.25,
        ),
        initial_cash=1000.0,
        commission=(0.0, 0.0, 0.0, 0.0, math.inf),
        slippage_bps=0.0,
        fill_at='next_open',
        allow_short=True,
        fractional=True,
        intrabar_path='adaptive',
        max_volume_participation=0.05,
        same_bar_reentry=False,
        linked_orders_same_bar=True,
        latency=86400000000000,
        latency_bars=0,
        names=False,
        via='slice',
        script={6: [('order', 1, 61.53846153846154, 'market_on_close', {}),
                    ('order', 0, -141.0, 'market', {'via': 'many'}), ('oco', [0, 1])],
                9: [('order', 1, -61.53846153846154, 'market', {'parent': 0}),
                    ('order', 1, -25.31645569620253, 'stop', {'stop': 19.9475})],
                10: [('order', 0, 23.529411764705884, 'market_on_open', {}), ('oco', [4, 1])],
                12: [('order', 0, -352.94117647058823, 'trailing_stop',
                      {'trail_percent': 0.03, 'tif': 'ioc'})]},
    ),
    # latency_bars: a child freed in transit (its IOC parent partly filled), then
    # replaced: the copy is accepted at its asset's next bar, not by a latency arrival.
    dict(
        panel=Panel(
            ['A0', 'A1'],
            [1704067200000000000, 1704153600000000000, 1704240000000000000, 1704326400000000000,
             1704412800000000000],
            [[(0, 17.75, 17.75, 17.5, 17.75, 3000.0), (1, 15.75, 16.0, 15.5, 15.75, 500.0)],
             [(0, 17.75, 17.75, 17.75, 17.75, 20.0), (1, 15.75, 16.0, 15.75, 15.75, 20.0)],
             [(0, 17.75, 18.0, 17.5, 17.75, 20.0), (1, 15.75, 16.0, 15.5, 15.75, 500.0)],
             [(0, 17.75, 18.0, 17.75, 17.75, 100.0), (1, 15.75, 16.0, 15.5, 15.75, 3000.0)],
             [(0, 17.75, 18.0, 17.5, 17.75, 0.0), (1, 15.75, 15.75, 15.5, 15.75, 0.0)]],
            0.25,
        ),
        initial_cash=1000.0,
        commission=(0.0, 0.0, 0.0, 0.0, math.inf),
        slippage_bps=0.0,
        fill_at='next_open',
        allow_short=True,
        fractional=True,
        intrabar_path='adaptive',
        max_volume_participation=1.0,
        same_bar_reentry=False,
        linked_orders_same_bar=True,
        latency=0,
        latency_bars=1,
        names=False,
        via='slice',
        script={'start': [('order', 1, 31.0, 'stop', {'stop': 15.25, 'tif': 'ioc'}),
                          ('order', 1, 76.0, 'market_on_open', {})],
                0: [('order', 0, -67.6056338028169, 'market', {'via': 'order'}),
                    ('order', 1, -31.0, 'market', {'parent': 0})],
                1: [('order', 1, 3.1746031746031744, 'market', {'via': 'buysell'}),
                    ('order', 0, 1.1267605633802817, 'market_on_open', {'tif': 'day'}),
                    ('replace', 3, {'quantity': -46.5})],
                2: [('bracket', 1, -3.1746031746031744, {'take_profit': 15.70275}),
                    ('order', 0, -5.0, 'market', {'via': 'order'}),
                    ('bracket', 1, 57.142857142857146, {'stop_loss': 15.70275, 'tif': 'day'}),
                    ('order', 1, -57.0, 'trailing_stop', {'trail_amount': 0.4725, 'tif': 'ioc'})],
                3: [('order', 1, -1.0, 'market_on_close', {}),
                    ('bracket', 1, -1.0, {'limit': 15.75, 'take_profit': 15.2775, 'tif': 'day'}),
                    ('order', 1, -1.0, 'market', {'tif': 'day'}),
                    ('order', 0, 1.0, 'market', {'via': 'many'}),
                    ('replace', 18, {'limit': 15.5})],
                4: [('order', 1, -190.0, 'trailing_stop', {'trail_amount': 0.0315}),
                    ('order', 0, -67.6056338028169, 'stop',
                     {'stop': 17.67094914075256, 'tif': 'gtd', 'expire': 1704499200000000000}),
                    ('order', 0, 0.11267605633802817, 'stop', {'stop': 17.5}),
                    ('bracket', 1, -1.2698412698412698,
                     {'stop_loss': 15.9075, 'take_profit': 15.70275, 'tif': 'fok'}),
                    ('order', 1, 12.0, 'stop_limit', {'stop': 16.25, 'limit': 16.25})]},
    ),
]
