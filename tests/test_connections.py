"""Credentials are encrypted at rest with a key outside the store, and only ever shown masked."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from fourgent.connections import Connections, CredentialError

SECRET = "xoxb-very-secret-token-1234"


@pytest.fixture
def conns(store, tmp_path, monkeypatch):
    monkeypatch.delenv("FOURGENT_SECRET_KEY", raising=False)
    return Connections(store, tmp_path / "secret.key")


def test_a_credential_round_trips_but_is_never_stored_in_clear(conns, store, data_paths):
    conns.save("Slack", "http://127.0.0.1:9/slack", SECRET)
    assert conns.get("Slack").token == SECRET
    store.db.con.execute("CHECKPOINT")
    assert SECRET.encode() not in data_paths.db_path.read_bytes()
    (state,) = conns.states()
    assert state.credential == "Untested" and state.masked == "••••••••1234"  # saved is not yet working
    assert SECRET not in repr(state) and SECRET not in repr(conns.get("Slack"))


def test_the_key_file_is_created_private(conns, tmp_path):
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode == 0o600


def test_the_key_from_the_environment_wins_and_a_wrong_key_says_so(store, tmp_path, monkeypatch):
    monkeypatch.setenv("FOURGENT_SECRET_KEY", Fernet.generate_key().decode())
    first = Connections(store, tmp_path / "unused.key")
    first.save("Xero", "http://x", SECRET)
    assert not (tmp_path / "unused.key").exists()
    monkeypatch.setenv("FOURGENT_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(CredentialError) as caught:
        Connections(store, tmp_path / "unused.key").get("Xero")
    assert SECRET not in str(caught.value)
    monkeypatch.setenv("FOURGENT_SECRET_KEY", "not-a-key")
    with pytest.raises(CredentialError, match="not a Fernet key"):
        Connections(store, tmp_path / "unused.key")


def test_missing_and_expired_states(conns):
    conns.save("HubSpot", "http://h", None)
    conns.save("QuickBooks", "http://q", SECRET)
    states = {s.app: s.credential for s in conns.states(expired={"QuickBooks"})}
    assert states == {"HubSpot": "Missing", "QuickBooks": "Expired"}


def test_an_empty_credential_is_refused(conns):
    with pytest.raises(CredentialError, match="empty"):
        conns.save("Slack", "http://s", "   ")


def test_a_refused_call_marks_the_credential_expired_until_it_is_set_again(conns):
    conns.save("QuickBooks", "http://q", SECRET)
    conns.record(ok=["QuickBooks"])
    assert conns.states()[0].credential == "Connected"
    conns.record(refused=["QuickBooks"])
    assert conns.states()[0].credential == "Expired"
    conns.save("QuickBooks", "http://q", "a-new-token-5678")
    assert conns.states()[0].credential == "Untested"  # no longer Expired; Connected once a call succeeds
    conns.record(ok=["QuickBooks"])
    assert conns.states()[0].credential == "Connected"


def test_a_success_after_a_refusal_clears_expired(conns):
    conns.save("Jira", "http://j", SECRET)
    conns.record(refused=["Jira"])
    conns.record(ok=["Jira"])
    (state,) = conns.states()
    assert state.credential == "Connected" and state.last_success_at is not None


def test_a_missing_key_file_is_not_replaced_while_credentials_need_it(conns, store, tmp_path):
    conns.save("Xero", "http://x", SECRET)
    key = tmp_path / "secret.key"
    kept = key.read_bytes()
    key.unlink()
    with pytest.raises(CredentialError, match="is missing, and 1 stored credential"):
        Connections(store, key)
    assert not key.exists()  # no new key was made behind the user's back
    key.write_bytes(kept)
    assert Connections(store, key).get("Xero").token == SECRET  # put back: readable again


def test_a_loose_or_broken_key_file_is_said_in_words(conns, store, tmp_path):
    key = tmp_path / "secret.key"
    assert Connections(store, key).warnings == []
    key.chmod(0o644)
    assert "can be read by other users (mode 644)" in Connections(store, key).warnings[0]
    key.write_text("not a key")
    with pytest.raises(CredentialError, match="cannot be used"):
        Connections(store, key)


def test_the_store_file_is_for_its_owner_only(store):
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
