"""`commcredits keys create|list|revoke` on a persistent store: the key is printed once, on the
last line; only its hash is kept; a revoked key is refused; bad usage and unknown keys exit with
their codes."""

import hashlib

import pytest

from application.settings import store_from_environment
from commcredits.api_keys import ApiKeys
from projections.view_database import ViewDatabase


@pytest.fixture
def contoso(cli) -> None:
    cli("org", "create", "contoso", "--name", "Contoso", "--country", "US", "--currency", "USD", "--commerce", "legacy",
        "--at", "2026-01-01T00:00:00Z")


def created_key(cli, *args: str) -> tuple[str, str]:
    lines = cli("keys", "create", *args).stdout.strip().splitlines()
    key_id = lines[0].split()[1].rstrip(":")
    return key_id, lines[-1]


def stored_keys(database_url: str) -> ApiKeys:
    return ApiKeys(ViewDatabase.for_store(store_from_environment({"COMMCREDITS_DATABASE_URL": database_url})))


def test_a_created_key_is_printed_once_kept_hashed_listed_and_revoked(cli, database_url, contoso):
    key_id, text = created_key(cli, "contoso", "--role", "switch")
    secret = text.removeprefix(f"cc_{key_id}_")
    assert secret != text and len(secret) == 43
    keys = stored_keys(database_url)
    try:
        key = keys.verify(text)
        assert (key.org, key.role) == ("contoso", "switch")
        stored, = keys.database.query("SELECT secret_sha256 FROM api_keys WHERE key_id = ?", (key_id,))
        assert stored == (hashlib.sha256(secret.encode()).hexdigest(),)  # the digest, never the secret
        listing = cli("keys", "list", "contoso").stdout
        assert key_id in listing and "switch" in listing and secret not in listing and stored[0] not in listing
        assert "revoked" not in listing
        cli("keys", "revoke", key_id)
        assert "revoked" in cli("keys", "list", "contoso").stdout
    finally:
        keys.close()
    fresh = stored_keys(database_url)  # another server: no cached verification
    try:
        assert fresh.verify(text) is None
    finally:
        fresh.close()


def test_an_operator_key_belongs_to_no_organization(cli, contoso):
    key_id, _ = created_key(cli, "--operator")
    assert key_id in cli("keys", "list").stdout
    assert key_id not in cli("keys", "list", "contoso").stdout


@pytest.mark.parametrize("args", [("contoso",), ("contoso", "--role", "king"), ("--operator", "--role", "switch"),
                                  ("contoso", "--operator"), ("", "--role", "switch")])
def test_bad_usage_exits_2(cli, args, contoso):
    cli("keys", "create", *args, expect=2)


def test_a_key_for_an_organization_that_does_not_exist_is_refused(cli, contoso):
    assert "unknown_organization" in cli("keys", "create", "contosso", "--role", "switch", expect=1).stderr
    assert cli("keys", "list", "contosso").stdout == ""


def test_revoking_an_unknown_key_exits_1(cli):
    assert "unknown_key" in cli("keys", "revoke", "0123456789abcdef", expect=1).stderr
