"""What a model call costs, in US dollars, as exact Decimals.

Prices are per 1M tokens. Batch and flex are half of standard on every rate (OpenAI's Batch
guide; the flex guide: "tokens are priced at Batch API rates"). Priority has its own published
rates and is known for few models here.

An unknown model raises `UnknownModelPrice` (never a silent zero): a cost the ledger shows
must be a real figure. Callers that prefer to record "cost unknown" catch it.

Every cost is exact: token counts are integers and rates have at most 4 decimals per 1M tokens,
so a cost has at most 10 decimal places (the ledger stores Numeric(20, 10)).

What people and scripts see of an amount goes through `format_usd` (`$0.017`) or `plain_usd`
(`0.017`): never the ledger's fixed scale (`0E-10`, `0.0170000000`). Models declare their
amounts as `Usd`, so their JSON carries the plain form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Final

from pydantic import PlainSerializer

from laneway.jobs import Usage

PER_TOKENS: Final = Decimal(1_000_000)
BATCH_DISCOUNT: Final = Decimal("0.5")
COST_QUANTUM: Final = Decimal("1E-10")


def plain_usd(amount: Decimal) -> str:
    """`amount` as plain decimal text, exactly, without trailing zeros or an exponent.

    `0E-10` -> `0`, `0.0170000000` -> `0.017`, `1.2E+3` -> `1200`, `1.2E-7` -> `0.00000012`.
    Nothing is rounded: a ledger amount has at most 10 decimal places.
    """
    if amount.is_zero():
        return "0"  # also for -0 and for any scale (0E-10, 0.00)
    return f"{amount.normalize():f}"


def format_usd(amount: Decimal | None) -> str:
    """US dollars for people, exactly and without noise: `$0`, `$0.017`, `$1200`.

    None (no known price for the model) reads `unknown`. Every surface that shows people a
    cost or an amount uses this: the CLI, the demo, workflows' details and reasons.
    """
    if amount is None:
        return "unknown"
    return f"${plain_usd(amount)}"


Usd = Annotated[Decimal, PlainSerializer(plain_usd, return_type=str, when_used="json")]
"""A US-dollar amount in a model: a Decimal in Python, plain text (`"0.017"`) in JSON."""


class PriceTier(StrEnum):
    STANDARD = "standard"
    BATCH = "batch"
    FLEX = "flex"
    PRIORITY = "priority"


@dataclass(frozen=True)
class Rates:
    """US dollars per 1M tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    def scaled(self, factor: Decimal) -> Rates:
        return Rates(self.input * factor, self.cached_input * factor, self.output * factor)


@dataclass(frozen=True)
class ModelPrice:
    standard: Rates
    priority: Rates | None = None

    def rates(self, tier: PriceTier) -> Rates | None:
        if tier is PriceTier.PRIORITY:
            return self.priority
        if tier is PriceTier.STANDARD:
            return self.standard
        return self.standard.scaled(BATCH_DISCOUNT)


def _rates(input_: str, cached_input: str, output: str) -> Rates:
    return Rates(Decimal(input_), Decimal(cached_input), Decimal(output))


PRICES: Final[dict[str, ModelPrice]] = {
    # From ../shared/openai-contract.md section 5 (standard and priority, 2026-06).
    "gpt-5.5": ModelPrice(
        standard=_rates("5.00", "0.50", "30.00"), priority=_rates("12.50", "1.25", "75.00")
    ),
    # Input and output from the contract ($2.50 / $10.00); the cached-input rate ($1.25) is
    # from OpenAI's public pricing page as last read (2025), not re-checked here.
    "gpt-4o": ModelPrice(standard=_rates("2.50", "1.25", "10.00")),
    # Below: OpenAI's public pricing page as last read (2025), not re-checked here (no network).
    # Listed because a local emulator or a test may serve these models.
    "gpt-4o-mini": ModelPrice(standard=_rates("0.15", "0.075", "0.60")),
    "gpt-4.1": ModelPrice(standard=_rates("2.00", "0.50", "8.00")),
    "gpt-4.1-mini": ModelPrice(standard=_rates("0.40", "0.10", "1.60")),
    "gpt-4.1-nano": ModelPrice(standard=_rates("0.10", "0.025", "0.40")),
    "gpt-5": ModelPrice(standard=_rates("1.25", "0.125", "10.00")),
    "gpt-5-mini": ModelPrice(standard=_rates("0.25", "0.025", "2.00")),
}

# The API answers with dated snapshots ("gpt-4o-2024-08-06"); they share the alias's price.
_SNAPSHOT_SUFFIX: Final = re.compile(r"-\d{4}-\d{2}-\d{2}$")

# Response.service_tier values as the provider reports them (contract section 3).
_SERVICE_TIERS: Final[dict[str, PriceTier]] = {
    "auto": PriceTier.STANDARD,
    "default": PriceTier.STANDARD,
    "standard": PriceTier.STANDARD,
    "flex": PriceTier.FLEX,
    "priority": PriceTier.PRIORITY,
    "batch": PriceTier.BATCH,
}


class UnknownModelPrice(LookupError):
    """No price is known for this model (or for this model in this tier)."""


def model_price(model: str) -> ModelPrice:
    price = PRICES.get(model) or PRICES.get(_SNAPSHOT_SUFFIX.sub("", model))
    if price is None:
        raise UnknownModelPrice(
            f"no price for model {model!r}: add it to laneway.pricing.PRICES "
            f"(known: {', '.join(sorted(PRICES))})"
        )
    return price


def price_tier(service_tier: str | None) -> PriceTier:
    """The price tier for a provider `service_tier` value (None means standard)."""
    if service_tier is None:
        return PriceTier.STANDARD
    try:
        return _SERVICE_TIERS[service_tier]
    except KeyError:
        raise UnknownModelPrice(
            f"no price tier for service_tier {service_tier!r} "
            f"(known: {', '.join(sorted(_SERVICE_TIERS))})"
        ) from None


def rates_for(model: str, tier: PriceTier | str) -> Rates:
    rates = model_price(model).rates(PriceTier(tier))
    if rates is None:
        raise UnknownModelPrice(f"no {PriceTier(tier).value} price for model {model!r}")
    return rates


def cost(usage: Usage, model: str, tier: PriceTier | str) -> Decimal:
    """US dollars for `usage`: uncached input, cached input and output each at their rate."""
    rates = rates_for(model, tier)
    uncached = usage.input_tokens - usage.cached_input_tokens
    dollars_per_1m = (
        uncached * rates.input
        + usage.cached_input_tokens * rates.cached_input
        + usage.output_tokens * rates.output
    )
    # Exact (see the module docstring); a fixed scale matches the ledger column.
    return (dollars_per_1m / PER_TOKENS).quantize(COST_QUANTUM)
