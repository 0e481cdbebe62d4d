"""The CLI's plain-text formatting: aligned columns, no trailing blanks, readable values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from client.cli_format import cell, fields, money, table, when


def test_table_aligns_columns_and_marks_missing_values() -> None:
    text = table(("JOB ID", "STATUS", "NOTE"), [("job-1", "running", None), ("j2", None, "ok")])
    assert text.splitlines() == [
        "JOB ID  STATUS   NOTE",
        "job-1   running  -",
        "j2      -        ok",
    ]


def test_table_keeps_each_row_on_one_line() -> None:
    text = table(("A", "B"), [("two\nlines", "x  y")])
    assert text.splitlines() == ["A          B", "two lines  x y"]
    assert not any(line.endswith(" ") for line in text.splitlines())


def test_table_of_no_rows_is_the_header() -> None:
    assert table(("JOB ID", "STATUS"), []) == "JOB ID  STATUS"


def test_fields_align_values_after_their_names() -> None:
    assert fields([("status", "running"), ("requested by", "alice"), ("reason", None)]) == (
        "status:        running\nrequested by:  alice\nreason:        -"
    )


def test_times_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert when(datetime(2026, 11, 22, 10, 30, 5, 999, tzinfo=paris)) == "2026-11-22 09:30:05Z"
    assert table(("AT",), [(datetime(2026, 1, 2, 3, 4, 5, tzinfo=paris),)]).splitlines()[1] == (
        "2026-01-02 02:04:05Z"
    )


def test_money_is_exact_without_trailing_zeros() -> None:
    assert money(Decimal("0.004200")) == "$0.0042"
    assert money(Decimal("12.000")) == "$12"
    assert money(Decimal("0E-10")) == "$0", "a zero cost from the ledger"
    assert money(Decimal("0.0000001200")) == "$0.00000012", "never rounded down to $0"
    assert money(Decimal("1E-5")) == "$0.00001"
    assert money(None) == "-"
    assert cell(Decimal("0.0170000000")) == "$0.017"
