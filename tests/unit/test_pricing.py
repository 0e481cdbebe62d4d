"""Cost math on the contract's pricing anchors."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import BaseModel

import laneway.background
import laneway.batch
from laneway.batch import Estimate
from laneway.jobs import Usage
from laneway.pricing import (
    PRICES,
    PriceTier,
    UnknownModelPrice,
    Usd,
    cost,
    format_usd,
    plain_usd,
    price_tier,
    rates_for,
)

MILLION = 1_000_000


def usage(input_tokens: int = 0, cached: int = 0, output: int = 0, reasoning: int = 0) -> Usage:
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output,
        reasoning_tokens=reasoning,
    )


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (PriceTier.STANDARD, Decimal("35.00")),
        (PriceTier.BATCH, Decimal("17.50")),
        (PriceTier.FLEX, Decimal("17.50")),
        (PriceTier.PRIORITY, Decimal("87.50")),
    ],
)
def test_gpt55_one_million_in_one_million_out(tier: PriceTier, expected: Decimal) -> None:
    assert cost(usage(MILLION, output=MILLION), "gpt-5.5", tier) == expected


def test_cached_tokens_are_priced_apart() -> None:
    # 1M input of which 400k cached: 600k at $5.00 + 400k at $0.50 = $3.00 + $0.20.
    assert cost(usage(MILLION, cached=400_000), "gpt-5.5", "standard") == Decimal("3.20")
    assert cost(usage(MILLION, cached=400_000), "gpt-5.5", "batch") == Decimal("1.60")


def test_reasoning_tokens_are_not_counted_twice() -> None:
    with_reasoning = usage(output=MILLION, reasoning=600_000)
    assert cost(with_reasoning, "gpt-5.5", "standard") == Decimal("30.00")


def test_gpt4o_contract_pair() -> None:
    assert cost(usage(MILLION, output=MILLION), "gpt-4o", "standard") == Decimal("12.50")
    assert cost(usage(MILLION, output=MILLION), "gpt-4o", "batch") == Decimal("6.25")


def test_dated_snapshot_uses_the_alias_price() -> None:
    assert rates_for("gpt-4o-2024-08-06", "standard") == rates_for("gpt-4o", "standard")


def test_small_costs_stay_exact() -> None:
    one_cached_token = usage(1, cached=1)
    assert cost(one_cached_token, "gpt-4.1-nano", "batch") == Decimal("0.0000000125")


def test_every_rate_fits_the_ledger_scale() -> None:
    # Batch halves each rate; a rate with <= 4 decimals keeps costs within 10 decimals.
    for price in PRICES.values():
        for tier in PriceTier:
            rates = price.rates(tier)
            if rates is None:
                continue
            for rate in (rates.input, rates.cached_input, rates.output):
                exponent = rate.as_tuple().exponent
                assert isinstance(exponent, int)
                assert exponent >= -4


def test_unknown_model_is_an_error_naming_it() -> None:
    with pytest.raises(UnknownModelPrice, match="'gpt-99'"):
        cost(usage(10), "gpt-99", "standard")


def test_missing_priority_price_is_an_error() -> None:
    with pytest.raises(UnknownModelPrice, match="priority"):
        cost(usage(10), "gpt-4o-mini", PriceTier.PRIORITY)


def test_unknown_tier_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="turbo"):
        cost(usage(10), "gpt-5.5", "turbo")


@pytest.mark.parametrize(
    ("service_tier", "tier"),
    [
        (None, PriceTier.STANDARD),
        ("auto", PriceTier.STANDARD),
        ("default", PriceTier.STANDARD),
        ("flex", PriceTier.FLEX),
        ("priority", PriceTier.PRIORITY),
    ],
)
def test_provider_service_tier_maps_to_price_tier(
    service_tier: str | None, tier: PriceTier
) -> None:
    assert price_tier(service_tier) is tier


def test_unknown_service_tier_is_an_error() -> None:
    with pytest.raises(UnknownModelPrice, match="'scale'"):
        price_tier("scale")


def test_cost_serialises_exactly() -> None:
    class Priced(BaseModel):
        cost_usd: Decimal

    value = cost(usage(123_457, cached=1_000, output=9_999), "gpt-5.5", "flex")
    dumped = Priced(cost_usd=value).model_dump_json()
    assert Priced.model_validate(json.loads(dumped)).cost_usd == value


@pytest.mark.parametrize(
    ("amount", "plain"),
    [
        (Decimal("0E-10"), "0"),  # a zero cost as the ledger gives it back (scale 10)
        (Decimal("0.0000000000"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("0.0170000000"), "0.017"),
        (Decimal("12.000"), "12"),
        (Decimal("1.2E+3"), "1200"),
        (Decimal("0.0000001200"), "0.00000012"),  # small, yet never written as 1.2E-7
        (Decimal("0.0000000001"), "0.0000000001"),  # exact: nothing is rounded away
    ],
)
def test_amounts_are_written_plainly(amount: Decimal, plain: str) -> None:
    assert plain_usd(amount) == plain
    assert format_usd(amount) == f"${plain}"


def test_an_unknown_amount_says_so() -> None:
    assert format_usd(None) == "unknown"


def test_a_zero_cost_from_the_ledger_is_zero_in_every_json() -> None:
    zero = cost(usage(), "gpt-4o-mini", "batch")
    assert str(zero) == "0E-10", "the ledger's fixed scale, which nobody should see"

    class Priced(BaseModel):
        cost_usd: Usd | None

    assert Priced(cost_usd=zero).model_dump(mode="json") == {"cost_usd": "0"}
    assert Priced(cost_usd=zero).model_dump() == {"cost_usd": zero}, "Python keeps the Decimal"
    assert Priced.model_validate_json(Priced(cost_usd=zero).model_dump_json()).cost_usd == 0
    estimate = Estimate(
        input_tokens=0,
        output_tokens=0,
        cost_batch_usd=zero,
        cost_standard_usd=Decimal("0.0170000000"),
    )
    assert json.loads(estimate.model_dump_json())["cost_standard_usd"] == "0.017"


def _amount_fields() -> list[tuple[type[BaseModel], str]]:
    """Every `*_usd` field of the lanes' messages (what the status query, the outcome and
    the HTTP API's JSON carry)."""
    found = []
    for module in (laneway.background, laneway.batch):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                found += [(value, name) for name in value.model_fields if name.endswith("_usd")]
    return sorted(set(found), key=lambda pair: (pair[0].__name__, pair[1]))


@pytest.mark.parametrize(
    ("model", "field"), _amount_fields(), ids=lambda x: getattr(x, "__name__", str(x))
)
def test_every_amount_in_the_lanes_messages_is_plain_in_json(
    model: type[BaseModel], field: str
) -> None:
    zero = cost(usage(), "gpt-4o-mini", "batch")
    noisy = Decimal("0.0170000000")
    for amount, plain in ((zero, "0"), (noisy, "0.017")):
        built = model.model_construct(None, **{field: amount})
        assert built.model_dump(mode="json", include={field}) == {field: plain}


def test_the_lanes_messages_have_amounts() -> None:
    fields = {f"{model.__name__}.{field}" for model, field in _amount_fields()}
    assert {"JobView.cost_usd", "BatchProgress.cost_usd", "Estimate.cost_batch_usd"} <= fields
