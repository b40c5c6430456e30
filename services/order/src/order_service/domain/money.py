"""Exact money: Decimal amounts checked against the ISO 4217 minor units of their currency."""

from __future__ import annotations

from decimal import Decimal

# Minor-unit exponents of the ISO 4217 currencies this shop accepts (a closed list on purpose:
# an unknown code is a client error, not something to guess about).
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
    "KRW": 0,
    "BHD": 3,
    "KWD": 3,
}

MAX_AMOUNT = Decimal("1000000000")


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted."""


def check_currency(code: str) -> str:
    """Return the ISO 4217 code if accepted, else raise MoneyError."""
    if code not in CURRENCY_EXPONENTS:
        raise MoneyError(
            f"unsupported currency {code!r} (ISO 4217, one of {sorted(CURRENCY_EXPONENTS)})"
        )
    return code


def check_amount(amount: Decimal, currency: str) -> Decimal:
    """Return the amount quantised to the currency's minor unit; raise if it has more precision."""
    exponent = CURRENCY_EXPONENTS[check_currency(currency)]
    if not amount.is_finite() or amount < 0 or amount >= MAX_AMOUNT:
        raise MoneyError(f"amount {amount} out of range")
    quantum = Decimal(1).scaleb(-exponent)
    quantised = amount.quantize(quantum)
    if quantised != amount:
        raise MoneyError(f"amount {amount} has more than {exponent} decimal places for {currency}")
    return quantised


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """The amount written with exactly the currency's decimals (the database keeps 4)."""
    exponent = CURRENCY_EXPONENTS.get(currency, 4)
    return amount.quantize(Decimal(1).scaleb(-exponent))
