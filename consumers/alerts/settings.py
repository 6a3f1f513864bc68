"""How alerts are delivered, from the environment (docs/alerts.md).

- `COMMCREDITS_SMTP_HOST` (unset: e-mail is not configured, e-mails are parked as failed with
  `smtp_not_configured` until it is and `alerts retry` replays them), `COMMCREDITS_SMTP_PORT`
  (587, 1-65535), `COMMCREDITS_SMTP_STARTTLS` (`true`), `COMMCREDITS_SMTP_USERNAME`,
  `COMMCREDITS_SMTP_PASSWORD`, `COMMCREDITS_SMTP_FROM` (`billing-alerts@localhost`),
  `COMMCREDITS_SMTP_TIMEOUT_S` (10, 0.1-300; also the webhooks' timeout), `COMMCREDITS_SMTP_CA_FILE`
  (extra CA bundle, a readable file), `COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH` (`false`).
- `COMMCREDITS_WEBHOOK_SECRET`: the master key each organization's signing key is derived from,
  at least 32 bytes (unset: a random key kept in `webhook-signing.key` under the data directory,
  created once).
- `COMMCREDITS_ALERTS_TOPIC` (`alerts.v1`).
- `COMMCREDITS_ALERT_MAX_ATTEMPTS` (8, 1-100), `COMMCREDITS_ALERT_BACKOFF_S` (1, 0-86400, the first
  retry's delay; each next one doubles, up to `COMMCREDITS_ALERT_BACKOFF_CAP_S`, 300, 0-86400),
  with jitter.

Every variable is checked when the settings are read (`alert_settings_from_environment`, at the
start of `commcredits run`), not when the first alert is sent: a bad value is a `SettingsError`
naming it. Credentials are never sent over a connection without TLS unless
`COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH=true` says so (a username with STARTTLS off is refused
here, and the SMTP sender checks the connection again before AUTH).
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from application.environment_settings import EnvironmentSettings
from application.setting_values import (
    EmailAddress,
    Flag,
    HostName,
    Port,
    ReadableFile,
    Text,
    TopicName,
    WebhookSecret,
    seconds,
    whole_number,
)
from application.settings import SettingsError, data_dir, private_data_dir
from consumers.alerts.smtp_delivery import SmtpSettings

DEFAULT_ALERTS_TOPIC = "alerts.v1"
DEFAULT_MAX_ATTEMPTS = 8
MAX_ATTEMPTS_LIMIT = 100  # with the default backoff cap, about eight hours of retries
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BACKOFF_CAP_S = 300.0
MAX_BACKOFF_S = 86_400.0  # a day between two attempts at most
DEFAULT_SEND_TIMEOUT_S = 10.0
MIN_SEND_TIMEOUT_S, MAX_SEND_TIMEOUT_S = 0.1, 300.0  # a claimed delivery's lease is 3 send timeouts + 5 s
DEFAULT_SMTP_PORT = 587
DEFAULT_SENDER = "billing-alerts@localhost"
SECRET_FILE_NAME = "webhook-signing.key"
SECRET_BYTES = 32

SendTimeoutSeconds = seconds(MIN_SEND_TIMEOUT_S, MAX_SEND_TIMEOUT_S)
BackoffSeconds = seconds(0, MAX_BACKOFF_S)
Attempts = whole_number(1, MAX_ATTEMPTS_LIMIT)


class AlertEnvironment(EnvironmentSettings):
    smtp_host: HostName = Field(None, validation_alias="COMMCREDITS_SMTP_HOST")
    smtp_port: Port = Field(DEFAULT_SMTP_PORT, validation_alias="COMMCREDITS_SMTP_PORT")
    smtp_starttls: Flag = Field(True, validation_alias="COMMCREDITS_SMTP_STARTTLS")
    smtp_allow_plaintext_auth: Flag = Field(False, validation_alias="COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH")
    smtp_username: Text = Field(None, validation_alias="COMMCREDITS_SMTP_USERNAME")
    smtp_password: Text = Field(None, validation_alias="COMMCREDITS_SMTP_PASSWORD")
    smtp_from: EmailAddress = Field(DEFAULT_SENDER, validation_alias="COMMCREDITS_SMTP_FROM")
    smtp_timeout_s: SendTimeoutSeconds = Field(DEFAULT_SEND_TIMEOUT_S, validation_alias="COMMCREDITS_SMTP_TIMEOUT_S")
    smtp_ca_file: ReadableFile = Field(None, validation_alias="COMMCREDITS_SMTP_CA_FILE")
    webhook_secret: WebhookSecret = Field(None, validation_alias="COMMCREDITS_WEBHOOK_SECRET")
    alerts_topic: TopicName = Field(DEFAULT_ALERTS_TOPIC, validation_alias="COMMCREDITS_ALERTS_TOPIC")
    max_attempts: Attempts = Field(DEFAULT_MAX_ATTEMPTS, validation_alias="COMMCREDITS_ALERT_MAX_ATTEMPTS")
    backoff_s: BackoffSeconds = Field(DEFAULT_BACKOFF_S, validation_alias="COMMCREDITS_ALERT_BACKOFF_S")
    backoff_cap_s: BackoffSeconds = Field(DEFAULT_BACKOFF_CAP_S, validation_alias="COMMCREDITS_ALERT_BACKOFF_CAP_S")


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
    settings = AlertEnvironment.from_environment(environ)
    return AlertSettings(
        smtp=_smtp(settings),
        webhook_master_secret=settings.webhook_secret.encode() if settings.webhook_secret else None,
        topic=settings.alerts_topic,
        retry=RetryPolicy(max_attempts=settings.max_attempts, backoff_s=settings.backoff_s,
                          backoff_cap_s=settings.backoff_cap_s),
        send_timeout_s=settings.smtp_timeout_s,
    )


def _smtp(settings: AlertEnvironment) -> SmtpSettings | None:
    if not settings.smtp_host:
        return None
    _refuse_credentials_in_clear(settings)
    return SmtpSettings(
        host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
        username=settings.smtp_username, password=settings.smtp_password, sender=settings.smtp_from,
        timeout_s=settings.smtp_timeout_s, ca_file=settings.smtp_ca_file,
        allow_plaintext_auth=settings.smtp_allow_plaintext_auth)


def _refuse_credentials_in_clear(settings: AlertEnvironment) -> None:
    """A password is sent only over TLS unless explicitly allowed; one without a username would
    never be sent at all (the server's 530 would only show on the first e-mail)."""
    if settings.smtp_password and not settings.smtp_username:
        raise SettingsError("COMMCREDITS_SMTP_PASSWORD is set but COMMCREDITS_SMTP_USERNAME is not: "
                            "set both or neither", variable="COMMCREDITS_SMTP_USERNAME")
    if settings.smtp_username and not settings.smtp_starttls and not settings.smtp_allow_plaintext_auth:
        raise SettingsError("COMMCREDITS_SMTP_STARTTLS is false but COMMCREDITS_SMTP_USERNAME is set: the password "
                            "would cross the network in clear; set COMMCREDITS_SMTP_STARTTLS=true (or "
                            "COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH=true to allow it)",
                            variable="COMMCREDITS_SMTP_STARTTLS", value="false", expected="true")


def master_secret_from_environment(environ: dict[str, str] | None = None) -> bytes:
    """The configured key, or one made once and kept beside the event store (readable by its owner
    only): the organizations' signing keys must not change when the consumer restarts."""
    configured = AlertEnvironment.from_environment(environ).webhook_secret
    if configured:
        return configured.encode()
    path = data_dir(environ) / SECRET_FILE_NAME
    try:
        return _read_or_create_secret(path, environ)
    except OSError as error:
        raise SettingsError(f"cannot read or create the webhook signing key {path}: "
                            f"{error.strerror or error}; set COMMCREDITS_WEBHOOK_SECRET") from None


def _read_or_create_secret(path: Path, environ: dict[str, str] | None) -> bytes:
    if not path.exists():
        private_data_dir(environ)
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
