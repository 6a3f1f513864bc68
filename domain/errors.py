"""Business outcomes with the SPEC's stable error codes (SPEC §11 lists them all).

A `DomainError` is an answer to a user, not a bug: its `code` is stable and machine readable,
its message says what to change.
"""


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


ERROR_CODES = tuple(
    cls.code
    for cls in (
        InvalidInput, UnknownOrganization, UnknownUser, DuplicateOrganization, DuplicateUser,
        LicencePrerequisite, LicenceConflict, LicenceNotHeld, CreditsNotActive, NceNotEligible,
        AlreadyConfigured, PaymentDeclined, UnknownAgreement, NoRate,
    )
)

ERROR_BY_CODE = {cls.code: cls for cls in DomainError.__subclasses__()}
