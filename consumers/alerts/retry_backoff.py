"""When a failed delivery is tried again: exponential backoff with jitter.

The n-th retry waits between half and all of `backoff_s * 2**(n-1)` (capped at
`backoff_cap_s`): doubling spares a struggling receiver, and the random half keeps many
deliveries that failed together from coming back together.
"""

import random

from consumers.alerts.settings import RetryPolicy


def retry_delay_s(failed_attempts: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """The pause after the `failed_attempts`-th failure (1 for the first)."""
    assert failed_attempts >= 1
    ceiling = min(policy.backoff_cap_s, policy.backoff_s * 2 ** min(failed_attempts - 1, 60))
    return ceiling * (rng or random).uniform(0.5, 1.0)


def gives_up(failed_attempts: int, policy: RetryPolicy) -> bool:
    """Whether a delivery that failed this often goes to the dead-letter store."""
    return failed_attempts >= policy.max_attempts
