"""App connections: base URL and credential, the credential encrypted at rest with a key kept outside the store.

cryptography's Fernet (AES-128-CBC with HMAC-SHA256, authenticated) does the
encryption: not something to write by hand. The key comes from
FOURGENT_SECRET_KEY, else from a key file beside the store created with mode
0600. A credential is only ever shown masked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .executor import Connection
from .store import ConnectionRow, Store

KEY_ENV = "FOURGENT_SECRET_KEY"




class CredentialError(ValueError):
    """A credential that cannot be stored or read; the message never contains it."""


def load_key(key_file: Path, *, credentials_stored: int = 0) -> Fernet:
    """FOURGENT_SECRET_KEY, else the key file (created 0600 on first use).

    A missing key file is made anew only while no credential is stored: a new key cannot read the ones the
    old key encrypted, so replacing it without a word would lose them all."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            return Fernet(env.encode())
        except ValueError:
            raise CredentialError(f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)") from None
    if not key_file.exists():
        if credentials_stored:
            raise CredentialError(
                f"The key file {key_file} is missing, and {credentials_stored} stored credential(s) were "
                f"encrypted with it. Put the file back (or set {KEY_ENV} to the key) to use them; a new key "
                "cannot read them.")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    try:
        return Fernet(key_file.read_bytes().strip())
    except (ValueError, OSError) as exc:
        raise CredentialError(f"The key file {key_file} cannot be used ({type(exc).__name__}): it must hold one "
                              "Fernet key (32 url-safe base64-encoded bytes).") from None


def key_warnings(key_file: Path) -> list[str]:
    """What is loose about where the key is kept, in words (the dashboard shows them; nothing stops)."""
    if os.environ.get(KEY_ENV) or not key_file.exists():
        return []
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        return [f"The key file {key_file} can be read by other users (mode {mode:o}): run chmod 600 on it."]
    return []


def mask(hint: str | None) -> str:
    """A stored credential, masked: its last 4 characters when it is long enough to spare them."""
    return f"••••••••{hint or ''}"


@dataclass(frozen=True)
class ConnectionState:
    app: str
    base_url: str
    credential: str  # "Connected", "Untested", "Expired" or "Missing"
    masked: str
    updated_at: datetime | None
    last_success_at: datetime | None


class Connections:
    """The store's connections; decrypts only to hand a Connection to the executor."""

    def __init__(self, store: Store, key_file: Path) -> None:
        self.store = store
        stored = sum(1 for row in store.connection_rows() if row.token_encrypted)
        self.fernet = load_key(key_file, credentials_stored=stored)
        self.warnings = key_warnings(key_file)

    def save(self, app: str, base_url: str, token: str | None) -> None:
        """Store an app's base URL and credential (None: keep none, the app shows as Missing)."""
        if token is not None and not token.strip():
            raise CredentialError("The credential is empty.")
        encrypted = self.fernet.encrypt(token.encode()).decode() if token else None
        hint = token[-4:] if token and len(token) >= 12 else None
        self.store.put_connection(app, base_url, encrypted, hint)

    def get(self, app: str) -> Connection | None:
        found = self.store.connection(app)
        if found is None:
            return None
        base_url, encrypted = found
        token = None
        if encrypted:
            try:
                token = self.fernet.decrypt(encrypted.encode()).decode()
            except InvalidToken:
                raise CredentialError(f"The stored credential for {app} cannot be read with this key "
                                      f"(was {KEY_ENV} or the key file changed?)") from None
        return Connection(app, base_url, token)

    def all(self) -> dict[str, Connection]:
        apps = [row.app for row in self.store.connection_rows()]
        return {app: conn for app in apps if (conn := self.get(app)) is not None}

    def record(self, ok: Iterable[str] = (), refused: Iterable[str] = ()) -> None:
        """Note which apps answered a call (ok) and which refused the credential (401/403)."""
        ok_apps, refused_apps = sorted(set(ok)), sorted(set(refused))
        if ok_apps or refused_apps:
            self.store.record_calls(ok_apps, refused_apps)

    def states(self, expired: Set[str] = frozenset()) -> list[ConnectionState]:
        """Every stored connection, credential masked.

        Expired: the app's latest answer to this credential was a refusal (recorded by `record`), or
        `expired` names it (runs in the logs failed with auth after the credential was last set).
        Untested: no call has succeeded with it since it was set (a saved token is not a working one).
        """
        def state(r: ConnectionRow) -> str:
            if not r.token_encrypted:
                return "Missing"
            if r.refused or r.app in expired:
                return "Expired"
            tested = r.last_success_at is not None and (r.updated_at is None or r.last_success_at >= r.updated_at)
            return "Connected" if tested else "Untested"

        return [ConnectionState(r.app, r.base_url, state(r), mask(r.token_hint) if r.token_encrypted else "—",
                                r.updated_at, r.last_success_at)
                for r in self.store.connection_rows()]
