"""The webhook signature: what receivers check, so that only our fresh, unaltered hooks pass."""

import pytest

from consumers.alerts.webhook_delivery import (
    SIGNATURE_TOLERANCE_S,
    InvalidSignature,
    signature_header,
    verify_signature,
    webhook_secret,
)

MASTER = b"master-secret-for-tests"
SECRET = webhook_secret(MASTER, "org-1")
BODY = b'{"id": "1234.recharge_failed", "kind": "recharge_failed"}'
SIGNED_AT = 1_800_000_000


def test_a_signed_body_verifies() -> None:
    header = signature_header(SECRET, BODY, SIGNED_AT)

    assert header.startswith(f"t={SIGNED_AT},v1=")
    verify_signature(SECRET, header, BODY, now=SIGNED_AT)


@pytest.mark.parametrize(("secret", "header", "body", "now", "code"), [
    (SECRET, signature_header(SECRET, BODY, SIGNED_AT), BODY + b" ", SIGNED_AT, "signature_mismatch"),
    (webhook_secret(MASTER, "org-2"), signature_header(SECRET, BODY, SIGNED_AT), BODY, SIGNED_AT,
     "signature_mismatch"),
    (SECRET, signature_header(SECRET, BODY, SIGNED_AT + 1).replace(f"t={SIGNED_AT + 1}", f"t={SIGNED_AT}"), BODY,
     SIGNED_AT, "signature_mismatch"),
    (SECRET, None, BODY, SIGNED_AT, "signature_missing"),
    (SECRET, "", BODY, SIGNED_AT, "signature_missing"),
    (SECRET, "v1=abc", BODY, SIGNED_AT, "signature_malformed"),
    (SECRET, f"t={SIGNED_AT}", BODY, SIGNED_AT, "signature_malformed"),
    (SECRET, f"t=soon,v1={'0' * 64}", BODY, SIGNED_AT, "signature_malformed"),
    (SECRET, "sha256=deadbeef", BODY, SIGNED_AT, "signature_malformed"),
], ids=["tampered body", "wrong secret", "tampered timestamp", "missing", "empty", "no timestamp",
        "no signature", "timestamp not a number", "foreign format"])
def test_what_does_not_verify(secret: bytes, header: str | None, body: bytes, now: int, code: str) -> None:
    with pytest.raises(InvalidSignature) as raised:
        verify_signature(secret, header, body, now=now)

    assert raised.value.code == code


@pytest.mark.parametrize(("now", "accepted"), [
    (SIGNED_AT + SIGNATURE_TOLERANCE_S, True),
    (SIGNED_AT + SIGNATURE_TOLERANCE_S + 1, False),
    (SIGNED_AT - SIGNATURE_TOLERANCE_S, True),
    (SIGNED_AT - SIGNATURE_TOLERANCE_S - 1, False),
], ids=["old at the tolerance", "older", "future at the tolerance", "further in the future"])
def test_the_signature_expires_either_way(now: int, accepted: bool) -> None:
    header = signature_header(SECRET, BODY, SIGNED_AT)

    if accepted:
        verify_signature(SECRET, header, BODY, now=now)
    else:
        with pytest.raises(InvalidSignature) as raised:
            verify_signature(SECRET, header, BODY, now=now)
        assert raised.value.code == "signature_expired"


def test_a_custom_tolerance_applies() -> None:
    header = signature_header(SECRET, BODY, SIGNED_AT)

    verify_signature(SECRET, header, BODY, now=SIGNED_AT + 10, tolerance_s=10)
    with pytest.raises(InvalidSignature, match="signature_expired"):
        verify_signature(SECRET, header, BODY, now=SIGNED_AT + 11, tolerance_s=10)


def test_organizations_get_different_stable_secrets() -> None:
    assert webhook_secret(MASTER, "org-1") == webhook_secret(MASTER, "org-1")
    assert webhook_secret(MASTER, "org-1") != webhook_secret(MASTER, "org-2")
    assert webhook_secret(MASTER, "org-1") != webhook_secret(b"another master", "org-1")
    assert len(webhook_secret(MASTER, "org-1")) == 32
