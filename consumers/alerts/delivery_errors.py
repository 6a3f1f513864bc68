"""How a delivery transport (e-mail, webhook) says a notification did not certainly arrive.

Both transports have a commit point: everything before it can be undone by dropping the
connection (the receiver never acts on half a message), everything after it may have reached
the receiver. So there are exactly two failures:

- `DeliveryFailed`: the receiver does not have the message (it refused it, or the commit point
  was never passed). Sending it again cannot duplicate it; `permanent` says whether it can help.
- `DeliveryUncertain`: the commit point was passed and no answer came. The receiver may have the
  message; sending it again could duplicate it, so the caller must not.
"""


class DeliveryFailed(Exception):
    """The receiver did not take the message.

    `permanent`: trying again cannot help (SMTP 5xx, HTTP 4xx other than 408/429, a redirect,
    a bad URL). `code`: a stable snake_case code ("smtp_unreachable", "smtp_auth_failed",
    "smtp_rejected", "smtp_tls_failed", "smtp_connection_lost", "webhook_unreachable",
    "webhook_timeout", "webhook_tls_failed", "webhook_http_500", "webhook_redirect",
    "webhook_bad_url").
    """

    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.permanent = permanent


class DeliveryUncertain(Exception):
    """The connection broke after the commit point and before the receiver answered.

    The receiver may or may not have the message: it is not to be sent again.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
