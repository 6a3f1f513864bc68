"""How alerts are delivered, from the environment (docs/alerts.md).

- `COMMCREDITS_SMTP_HOST` (unset: e-mail is not configured, e-mails are parked as failed with
  `smtp_not_configured` until it is and `alerts retry` replays them), `COMMCREDITS_SMTP_PORT`
  (587), `COMMCREDITS_SMTP_STARTTLS` (`true`), `COMMCREDITS_SMTP_USERNAME`,
  `COMMCREDITS_SMTP_PASSWORD`, `COMMCREDITS_SMTP_FROM` (`billing-alerts@localhost`),
  `COMMCREDITS_SMTP_TIMEOUT_S` (10), `COMMCREDITS_SMTP_CA_FILE` (extra CA bundle).
- `COMMCREDITS_WEBHOOK_SECRET`: the master key each organization's signing key is derived from
  (unset: a random key kept in `webhook-signing.key` under the data directory, created once).
- `COMMCREDITS_ALERTS_TOPIC` (`alerts.v1`).
- `COMMCREDITS_ALERT_MAX_ATTEMPTS` (8), `COMMCREDITS_ALERT_BACKOFF_S` (1, the first retry's
  delay; each next one doubles, up to `COMMCREDITS_ALERT_BACKOFF_CAP_S`, 300), with jitter.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from commcredits.settings import SettingsError, data_dir
from consumers.smtp_delivery import SmtpSettings

DEFAULT_ALERTS_TOPIC = "alerts.v1"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BACKOFF_CAP_S = 300.0
DEFAULT_SEND_TIMEOUT_S = 10.0
SECRET_FILE_NAME = "webhook-signing.key"
SECRET_BYTES = 32
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_s: float = DEFAULT_BACKOFF_S
    backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S


@dataclass(frozen=True)
class AlertSettings:
    smtp: SmtpSettings | None
    webhook_master_secret: bytes | None = None  # None: the key file under the data directory, read when first needed
    topic: str = DEFAULT_ALERTS_TOPIC
    retry: RetryPolicy = RetryPolicy()
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S

    def master_secret(self, environ: dict[str, str] | None = None) -> bytes:
        return self.webhook_master_secret or master_secret_from_environment(environ)


def alert_settings_from_environment(environ: dict[str, str] | None = None) -> AlertSettings:
    environ = os.environ if environ is None else environ
    timeout_s = _number(environ, "COMMCREDITS_SMTP_TIMEOUT_S", DEFAULT_SEND_TIMEOUT_S, minimum=0.1)
    return AlertSettings(
        smtp=_smtp(environ, timeout_s),
        webhook_master_secret=(environ.get("COMMCREDITS_WEBHOOK_SECRET") or "").encode() or None,
        topic=environ.get("COMMCREDITS_ALERTS_TOPIC") or DEFAULT_ALERTS_TOPIC,
        retry=RetryPolicy(
            max_attempts=int(_number(environ, "COMMCREDITS_ALERT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS, minimum=1)),
            backoff_s=_number(environ, "COMMCREDITS_ALERT_BACKOFF_S", DEFAULT_BACKOFF_S, minimum=0.0),
            backoff_cap_s=_number(environ, "COMMCREDITS_ALERT_BACKOFF_CAP_S", DEFAULT_BACKOFF_CAP_S, minimum=0.0)),
        send_timeout_s=timeout_s,
    )


def _smtp(environ: dict[str, str], timeout_s: float) -> SmtpSettings | None:
    host = environ.get("COMMCREDITS_SMTP_HOST")
    if not host:
        return None
    return SmtpSettings(
        host=host, port=int(_number(environ, "COMMCREDITS_SMTP_PORT", 587, minimum=1)),
        starttls=_flag(environ, "COMMCREDITS_SMTP_STARTTLS", True),
        username=environ.get("COMMCREDITS_SMTP_USERNAME") or None,
        password=environ.get("COMMCREDITS_SMTP_PASSWORD") or None,
        sender=environ.get("COMMCREDITS_SMTP_FROM") or "billing-alerts@localhost",
        timeout_s=timeout_s, ca_file=environ.get("COMMCREDITS_SMTP_CA_FILE") or None)


def master_secret_from_environment(environ: dict[str, str] | None = None) -> bytes:
    """The configured key, or one made once and kept beside the event store (readable by its owner
    only): the organizations' signing keys must not change when the consumer restarts."""
    environ = os.environ if environ is None else environ
    configured = environ.get("COMMCREDITS_WEBHOOK_SECRET")
    if configured:
        return configured.encode()
    path = data_dir(environ) / SECRET_FILE_NAME
    try:
        return _read_or_create_secret(path)
    except OSError as error:
        raise SettingsError(f"cannot read or create the webhook signing key {path}: "
                            f"{error.strerror or error}; set COMMCREDITS_WEBHOOK_SECRET") from None


def _read_or_create_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(SECRET_BYTES))
        try:
            os.link(temporary, path)  # atomic, and the first process to get there wins
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip().encode()


def _number(environ: dict[str, str], name: str, default: float, *, minimum: float) -> float:
    text = environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {text!r}")
    return value


def _flag(environ: dict[str, str], name: str, default: bool) -> bool:
    text = (environ.get(name) or "").strip().lower()
    if not text:
        return default
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise SettingsError(f"{name} must be true or false, got {environ[name]!r}")
