"""Who counts as a minor (未成年人): the one age line the marketing rules share."""

from __future__ import annotations

# Below this age (the storefront's signed `age` claim) a buyer is never marketed to.
ADULT_AGE = 18


def is_minor(age: int | None) -> bool:
    """True when the buyer's identity says they are under 18; no age said: not a minor."""
    return age is not None and age < ADULT_AGE
