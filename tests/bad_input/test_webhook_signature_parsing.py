"""Hostile `Commcredits-Signature` headers: each is rejected as an invalid signature with its code,
never with another exception (`int()` of 5,000 digits or of "²" raised ValueError; a non-ASCII v1
made `hmac.compare_digest` raise TypeError)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.alerts.webhook_delivery import (
    MAX_SIGNATURE_HEADER_CHARS,
    MAX_SIGNATURES,
    InvalidSignature,
    signature_header,
    verify_signature,
    webhook_secret,
)

SECRET = webhook_secret(b"master-secret-for-tests", "org-1")
BODY = b'{"id": "1234.recharge_failed", "kind": "recharge_failed"}'
SIGNED_AT = 1_800_000_000
GOOD = signature_header(SECRET, BODY, SIGNED_AT)
SIGNATURE = GOOD.partition(",v1=")[2]
T = f"t={SIGNED_AT}"
V1 = f"v1={SIGNATURE}"
MALFORMED, MISSING = "signature_malformed", "signature_missing"

HOSTILE = [
    # (id, header, code)
    ("huge t", f"t={'9' * 5000},{V1}", MALFORMED),
    ("t one digit over the bound", f"t={'1' * 13},{V1}", MALFORMED),
    ("superscript digit", f"t=²,{V1}", MALFORMED),
    ("Arabic-Indic digits", f"t={'١٨٠٠٠٠٠٠٠٠'},{V1}", MALFORMED),
    ("fullwidth digits", f"t={'１８００００００００'},{V1}", MALFORMED),
    ("signed t", f"t=+{SIGNED_AT},{V1}", MALFORMED),
    ("negative t", f"t=-1,{V1}", MALFORMED),
    ("t with a leading zero", f"t=0{SIGNED_AT},{V1}", MALFORMED),
    ("t as a float", f"t=1.8e9,{V1}", MALFORMED),
    ("empty t", f"t=,{V1}", MALFORMED),
    ("no t", V1, MALFORMED),
    ("no v1", T, MALFORMED),
    ("no equals sign", f"t{SIGNED_AT},{V1}", MALFORMED),
    ("empty key", f"={SIGNED_AT},{V1}", MALFORMED),
    ("t twice, same value", f"{T},{T},{V1}", MALFORMED),
    ("t twice, different values", f"{T},t={SIGNED_AT + 1},{V1}", MALFORMED),
    ("too many v1", ",".join([T] + [V1] * (MAX_SIGNATURES + 1)), MALFORMED),
    ("empty", "", MISSING),
    ("absent", None, MISSING),
    ("only commas", ",,,", MALFORMED),
    ("empty item", f"{T},,{V1}", MALFORMED),
    ("trailing comma", f"{GOOD},", MALFORMED),
    ("non-hex v1", f"{T},v1={'z' * 64}", MALFORMED),
    ("non-ASCII v1", f"{T},v1={'é' * 64}", MALFORMED),
    ("short v1", f"{T},v1={SIGNATURE[:-1]}", MALFORMED),
    ("upper-case v1", f"{T},v1={SIGNATURE.upper()}", MALFORMED),
    ("space inside t", f"t=18 00000000,{V1}", MALFORMED),
    ("space after the equals sign", f"t= {SIGNED_AT},{V1}", MALFORMED),
    ("newline", f"{T}\n,{V1}", MALFORMED),
    ("no-break space", f"\u00a0{T},{V1}", MALFORMED),
    ("em space", f"{T},\u2003{V1}", MALFORMED),
    ("NUL", f"{T}\x00,{V1}", MALFORMED),
    ("too long", f"{GOOD},x={'a' * MAX_SIGNATURE_HEADER_CHARS}", MALFORMED),
    ("non-ASCII key", f"{T},{V1},ключ=1", MALFORMED),
]


@pytest.mark.parametrize(("header", "code"), [(header, code) for _, header, code in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])
def test_a_hostile_header_is_an_invalid_signature_and_nothing_else(header: str | None, code: str) -> None:
    with pytest.raises(InvalidSignature) as raised:
        verify_signature(SECRET, header, BODY, now=SIGNED_AT)

    assert raised.value.code == code


@pytest.mark.parametrize("header", [
    GOOD,
    f" {T} , {V1} ",
    f"{T},\t{V1}\t",
    f"{T},v0=deadbeef,{V1}",
    f"{T},v1={'0' * 64},{V1}",
    f"{V1},{T}",
], ids=["as signed", "spaces around the commas", "tabs around the commas", "another scheme ignored",
        "a second v1, the right one", "v1 first"])
def test_what_the_strict_reading_still_accepts(header: str) -> None:
    verify_signature(SECRET, header, BODY, now=SIGNED_AT)


@given(st.text(max_size=200) | st.builds(lambda prefix, rest: prefix + rest,
                                         st.sampled_from(["t=", f"{T},v1=", f"{V1},t="]), st.text(max_size=200)))
def test_any_text_is_answered_with_invalid_signature_at_worst(header: str) -> None:
    try:
        verify_signature(SECRET, header, BODY, now=SIGNED_AT)
    except InvalidSignature:
        pass
