"""Secrets: password hashes, opaque session tokens and API keys (only their hashes are kept)."""

from __future__ import annotations

import hashlib
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Argon2id cost, tunable per deployment (the library's defaults: 3 passes over 64 MiB).
# Test runs lower it: they hash hundreds of passwords and prove nothing about the KDF.
_hasher = PasswordHasher(
    time_cost=int(os.environ.get("HOMING_ARGON2_TIME_COST", "3")),
    memory_cost=int(os.environ.get("HOMING_ARGON2_MEMORY_KIB", "65536")),
)
# Verified against when the account does not exist, so a wrong username costs the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
