"""Secrets every engine replica must agree on, settled through the shared database.

The user-id salt (a user's votes through any replica are one user's) and the key that signs
session cookies and CSRF tokens (a browser may reach any replica) must be the same everywhere.
Each is either configured (``FIRSTREPLY_USER_SALT``, ``FIRSTREPLY_SESSION_SECRET``) or generated
once and kept in the database: the first replica to start inserts one, a replica starting at the
same moment loses the insert race and reads back the winner's.

A configured secret is never written to the database, only its scrypt fingerprint, so a replica
with a different setting (or none, where the others have one) refuses to start with one line
naming the setting. An install from before this existed kept its secrets in the data folder:
when the database has none yet, the file's value becomes the shared one, so the pseudonyms of
earlier votes don't change.

To rotate one (``firstreply secrets forget session-secret|user-salt``): stop every engine, change or
unset the setting on every engine alike, forget the old value (with the new setting, if any, in the
environment), and start them again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.config import ConfigError
from engine.store.database import sessions
from engine.store.models import SharedSecret

log = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # about 16 MiB and a few tens of milliseconds per check


def fingerprint(secret: str) -> str:
    """A slow, salted one-way hash of ``secret``: enough to compare a setting with, never to recover it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def matches(secret: str, stored: SharedSecret) -> bool:
    if stored.value is not None:
        return hmac.compare_digest(secret.encode(), stored.value.encode())
    scheme, salt, digest = stored.fingerprint.split("$")
    if scheme != "scrypt":
        return False
    again = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), dklen=32, **SCRYPT)
    return hmac.compare_digest(again.hex(), digest)


class SharedSecrets:
    def __init__(self, engine: AsyncEngine) -> None:
        self.session = sessions(engine)

    async def _stored(self, name: str) -> SharedSecret | None:
        async with self.session() as session:
            return await session.get(SharedSecret, name)

    async def forget(self, name: str, configured: SecretStr | None, generated_bytes: int) -> None:
        """Replace the shared secret ``name`` (to rotate it): with the configured value's fingerprint when one is
        set here, else with a newly generated value. Replaced, not dropped: an old copy left in a replica's data
        folder can't come back as the shared one."""
        own = configured.get_secret_value() if configured is not None else None
        value = None if own is not None else secrets.token_hex(generated_bytes)
        kept = own if own is not None else value
        assert kept is not None  # one of the two is set
        async with self.session.begin() as session:
            stored = await session.get(SharedSecret, name)
            if stored is not None:
                await session.delete(stored)
                await session.flush()
            session.add(SharedSecret(name=name, value=value, fingerprint=fingerprint(kept)))

    async def _insert_if_absent(self, row: SharedSecret) -> SharedSecret:
        """Insert ``row`` unless another replica got there first; returns the one that won either way."""
        try:
            async with self.session.begin() as session:
                session.add(row)
        except IntegrityError:  # a replica starting at the same moment inserted its own: use that one
            pass
        stored = await self._stored(row.name)
        assert stored is not None
        return stored

    async def agree(self, name: str, setting: str, configured: SecretStr | None, legacy_file: Path,
                    generated_bytes: int) -> str:
        """The value of secret ``name`` this replica must use; ConfigError when it can't agree with the others."""
        own = configured.get_secret_value() if configured is not None else None
        stored = await self._stored(name)
        if stored is None:
            if own is not None:
                row = SharedSecret(name=name, value=None, fingerprint=fingerprint(own))
            else:
                value = _read(legacy_file) or secrets.token_hex(generated_bytes)
                row = SharedSecret(name=name, value=value, fingerprint=fingerprint(value))
            stored = await self._insert_if_absent(row)
        if own is not None:
            if matches(own, stored):
                return own
            if stored.value is not None:
                raise ConfigError(f"{setting} differs from the value this database already holds, which every engine "
                                  f"using it must share; unset {setting} here to use that one")
            raise ConfigError(f"{setting} differs from the value the other engines using this database were given; "
                              f"set the same value on every engine")
        if stored.value is None:
            raise ConfigError(f"{setting} is set on the other engines using this database; set the same value here")
        if (old := _read(legacy_file)) and old != stored.value:
            log.warning("%s in the data folder is not the one the replicas share (kept in the database); "
                        "the shared one is used", legacy_file.name)
        return stored.value


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
