"""A plain-Python FIFO matcher: the oracle for the compiled ``mlbacktest._fifo``.

It follows the rules of ``docs/metrics.md`` (and of ``fifo_round_trips``):
fills in a stable time order; a fill first closes the asset's oldest lots
of the opposite sign, pro-rating each lot's and the fill's costs by the size
closed; a remainder opens a new lot. A quantity at most ``rtol`` times its
reference is zero (dust), so float residue never leaves a phantom lot.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def reference_fifo(ts, asset, order_id, quantity, price, commission, slippage, rtol):
    """Return ``(matches, open_lots)`` as lists of tuples."""
    n = len(ts)
    matches, books = [], {}
    for i in sorted(range(n), key=lambda j: (ts[j], j)):
        q = float(quantity[i])
        if q == 0.0:
            continue
        c_unit = commission[i] / abs(q)
        s_unit = slippage[i] / abs(q)
        book = books.setdefault(int(asset[i]), deque())
        remaining, dust = q, rtol * abs(q)
        while book and book[0][3] * remaining < 0.0:
            lot = book[0]  # [entry_ts, order_id, price, quantity, c_unit, s_unit, fill]
            lot_size = abs(lot[3])
            size = min(lot_size, abs(remaining))
            if abs(lot_size - abs(remaining)) <= dust:
                size = lot_size
            sign = 1 if lot[3] > 0.0 else -1
            matches.append((int(asset[i]), sign, lot[0], int(ts[i]), size, lot[2],
                            float(price[i]), size * (lot[4] + c_unit), lot[1],
                            int(order_id[i]), size * (lot[5] + s_unit), lot[6], i))
            lot[3] -= sign * size
            remaining += sign * size
            if abs(lot[3]) <= rtol * lot_size:
                book.popleft()
            if abs(remaining) <= dust:
                remaining = 0.0
                break
        if remaining != 0.0:
            book.append([int(ts[i]), int(order_id[i]), float(price[i]), remaining, c_unit,
                         s_unit, i])
    open_lots = [(a, 1 if lot[3] > 0 else -1, abs(lot[3]), lot[0], lot[2], lot[1])
                 for a in sorted(books) for lot in books[a]]
    return matches, open_lots


def as_rows(columns: dict[str, np.ndarray], keys) -> list[tuple]:
    return list(zip(*(columns[k].tolist() for k in keys), strict=True))
