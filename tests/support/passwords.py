"""Cheap argon2 for tests that create many agents: real hashing, test-sized cost.

On a busy CI machine the default argon2 cost (64 MiB, 3 passes) takes most of a
second per hash; tests of who-may-do-what create and log in dozens of agents and
are not about the hash's strength. Hashes keep their parameters, so they verify
the same way either side of the swap.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from app.shops import security


@pytest.fixture(scope="module")
def cheap_password_hashing() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        yield
