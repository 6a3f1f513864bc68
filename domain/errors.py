"""Business outcomes with the SPEC's stable error codes (SPEC §11 lists them all).

A `DomainError` is an answer to a user, not a bug: its `code` is stable and machine readable,
its message says what to change.
"""


SHOWN_VALUE_CHARS = 60


def shown(value: object) -> str:
    """A rejected value as it may appear in an error message: its repr, cut short. A message
    repeats what the client sent, so a 600 KB value must not become a 600 KB message (it would
    not fit a dead letter's header, a log line or an HTTP error)."""
    text = repr(value) if not isinstance(value, (list, dict, tuple)) or len(value) < 100 else f"<{type(value).__name__} of {len(value)} items>"
    if len(text) <= SHOWN_VALUE_CHARS:
        return text
    return f"{text[:SHOWN_VALUE_CHARS]}... ({len(text)} characters)"


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(DomainError):
    code = "invalid_input"


class UnknownOrganization(DomainError):
    code = "unknown_organization"

    def __init__(self, org: str) -> None:
        super().__init__(f"organization {org!r} does not exist")
        self.org = org


class UnknownAuthorization(DomainError):
    code = "unknown_authorization"


class DuplicateOrganization(DomainError):
    code = "duplicate_organization"

    def __init__(self, org: str) -> None:
        super().__init__(f"organization {org!r} already exists")
        self.org = org


class UnknownUser(DomainError):
    code = "unknown_user"


class DuplicateUser(DomainError):
    code = "duplicate_user"


class LicencePrerequisite(DomainError):
    code = "licence_prerequisite"


class LicenceConflict(DomainError):
    code = "licence_conflict"


class LicenceNotHeld(DomainError):
    code = "licence_not_held"


class CreditsNotActive(DomainError):
    code = "credits_not_active"


class NceNotEligible(DomainError):
    code = "nce_not_eligible"


class AlreadyConfigured(DomainError):
    code = "already_configured"


class PaymentDeclined(DomainError):
    code = "payment_declined"


class UnknownAgreement(DomainError):
    code = "unknown_agreement"


class NoRate(DomainError):
    code = "no_rate"


class FutureTime(DomainError):
    """Not a SPEC code: the live engine's guard against a time far ahead of the wall clock. One
    CDR dated 2199 would otherwise move its shard's clock there and expire every organization's
    funds (`simulate` has no wall clock and keeps SPEC §11's line-driven clock)."""
    code = "future_time"


ERROR_CODES = tuple(
    cls.code
    for cls in (
        InvalidInput, UnknownOrganization, UnknownAuthorization, UnknownUser, DuplicateOrganization, DuplicateUser,
        LicencePrerequisite, LicenceConflict, LicenceNotHeld, CreditsNotActive, NceNotEligible,
        AlreadyConfigured, PaymentDeclined, UnknownAgreement, NoRate, FutureTime,
    )
)

ERROR_BY_CODE = {cls.code: cls for cls in DomainError.__subclasses__()}
