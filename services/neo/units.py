"""The unit domains of seed 001, with conversion factors computed by `quantities`.

Units are accepted case-insensitively and always returned lower-case.
"""
from __future__ import annotations

from dataclasses import dataclass

import quantities as pq

# seed name -> the quantities spelling
_SPELLING = {
    "s": "s", "ms": "ms", "mcs": "us",
    "v": "V", "mv": "mV", "mcv": "uV",
    "hz": "Hz", "khz": "kHz", "mhz": "MHz", "1/s": "1/s",
}


@dataclass(frozen=True)
class UnitDomain:
    name: str
    base: str  # the unit values are converted to for comparisons and arithmetic
    units: tuple[str, ...]

    def factor(self, unit: str) -> float:
        """How many `base` units one `unit` is."""
        return _FACTORS[(self.name, unit)]


TIME = UnitDomain("time", "s", ("s", "ms", "mcs"))
SIGNAL = UnitDomain("signal", "v", ("v", "mv", "mcv"))
RATE = UnitDomain("rate", "hz", ("hz", "khz", "mhz", "1/s"))
DOMAINS = {domain.name: domain for domain in (TIME, SIGNAL, RATE)}

_FACTORS = {
    (domain.name, unit): float(pq.Quantity(1.0, _SPELLING[unit]).rescale(_SPELLING[domain.base]).magnitude)
    for domain in DOMAINS.values()
    for unit in domain.units
}


class UnitError(ValueError):
    pass


def normalise_unit(raw: object, domain: UnitDomain) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise UnitError(f"units are required, one of {', '.join(domain.units)}")
    unit = raw.strip().lower()
    if unit not in domain.units:
        raise UnitError(f"{raw!r} is not a {domain.name} unit; use one of {', '.join(domain.units)}")
    return unit


def convert(value, from_unit: str, to_unit: str, domain: UnitDomain):
    """`value` (a number or an array) from one unit of `domain` to another."""
    if from_unit == to_unit:
        return value
    return value * (domain.factor(from_unit) / domain.factor(to_unit))
