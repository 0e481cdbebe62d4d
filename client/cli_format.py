"""Plain-text output for the `laneway` command: aligned tables, field lists, times, money.

Kept free of Temporal and the ledger so it is cheap to import and easy to test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from laneway.pricing import format_usd

EMPTY = "-"
_GAP = "  "


def cell(value: object) -> str:
    """One table cell: `-` for nothing, times in UTC, one line only."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, Decimal):
        return money(value)
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns padded to their widest cell; the last column is not padded (no trailing blanks)."""
    lines = [list(headers), *([cell(value) for value in row] for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(headers))]
    return "\n".join(
        _GAP.join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """`name:  value` lines with the values aligned, as `jobs show` prints a job."""
    width = max((len(name) for name, _ in pairs), default=0) + 1
    return "\n".join(f"{name + ':':<{width}}{_GAP}{cell(value)}" for name, value in pairs)


def when(moment: datetime) -> str:
    """A timestamp in UTC to the second, e.g. `2026-11-22 09:30:05Z`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def money(amount: Decimal | None) -> str:
    """US dollars as `laneway.pricing.format_usd` writes them (`$0`, `$0.0042`, `$12`);
    `-` for no amount (none yet, or no known price)."""
    return EMPTY if amount is None else format_usd(amount)
