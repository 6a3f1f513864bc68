"""Item 14: SMTP credentials never cross the network in clear unless the operator allows it, and a
webhook master key shorter than 32 bytes is refused.

Before: with `COMMCREDITS_SMTP_STARTTLS=false` and a username, the password went out in AUTH PLAIN
over plain TCP to any server that offered AUTH; `COMMCREDITS_WEBHOOK_SECRET=x` was accepted and
every organization's signing key derived from one guessable byte.

Now: the settings refuse that combination at start-up (exit 2 for `commcredits run`), and the
SMTP sender itself checks the connection is TLS before AUTH (defence in depth), unless
`COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH=true` / `SmtpSettings.allow_plaintext_auth`.
"""

import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from application.settings import SettingsError
from consumers.alerts.delivery_errors import DeliveryFailed
from consumers.alerts.settings import alert_settings_from_environment, master_secret_from_environment
from consumers.alerts.smtp_delivery import SmtpSender, SmtpSettings, build_email
from tests.bad_input.test_settings_validation import run_cli

TIMEOUT_S = 5.0
RECIPIENT = "billing@example.com"
CREDENTIALS = ("alerts", "s3cret-password")
MAIL_SERVER = {"COMMCREDITS_SMTP_HOST": "smtp.example.com", "COMMCREDITS_SMTP_USERNAME": CREDENTIALS[0],
               "COMMCREDITS_SMTP_PASSWORD": CREDENTIALS[1]}


# ----- the settings ------------------------------------------------------------------------------

@pytest.mark.parametrize("starttls", ["false", "0", "FALSE"])
def test_a_username_without_starttls_is_refused_at_start_up_unless_explicitly_allowed(starttls):
    environ = {**MAIL_SERVER, "COMMCREDITS_SMTP_STARTTLS": starttls}
    with pytest.raises(SettingsError) as refused:
        alert_settings_from_environment(environ)

    assert refused.value.variable == "COMMCREDITS_SMTP_STARTTLS"
    assert "COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH=true" in str(refused.value) and "in clear" in str(refused.value)
    assert CREDENTIALS[1] not in str(refused.value)
    allowed = alert_settings_from_environment({**environ, "COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH": "true"}).smtp
    over_tls = alert_settings_from_environment({**MAIL_SERVER, "COMMCREDITS_SMTP_STARTTLS": "true"}).smtp
    by_default = alert_settings_from_environment(MAIL_SERVER).smtp  # STARTTLS is on by default
    no_credentials = alert_settings_from_environment({"COMMCREDITS_SMTP_HOST": "localhost",
                                                      "COMMCREDITS_SMTP_STARTTLS": starttls}).smtp
    assert [(smtp.starttls, smtp.username, smtp.allow_plaintext_auth)
            for smtp in (allowed, over_tls, by_default, no_credentials)] == [
        (False, CREDENTIALS[0], True), (True, CREDENTIALS[0], False), (True, CREDENTIALS[0], False),
        (False, None, False)]


def test_a_password_without_a_username_is_refused():
    with pytest.raises(SettingsError, match="COMMCREDITS_SMTP_USERNAME"):
        alert_settings_from_environment({"COMMCREDITS_SMTP_HOST": "h", "COMMCREDITS_SMTP_PASSWORD": "secret"})


@pytest.mark.parametrize("secret", ["x", "short-secret", "k" * 31, "é" * 15, "s3cret!"])
def test_a_webhook_secret_under_32_bytes_is_refused_without_being_shown(secret):
    for read in (alert_settings_from_environment, master_secret_from_environment):
        with pytest.raises(SettingsError) as refused:
            read({"COMMCREDITS_WEBHOOK_SECRET": secret})

        assert refused.value.variable == "COMMCREDITS_WEBHOOK_SECRET"
        assert str(refused.value).startswith("COMMCREDITS_WEBHOOK_SECRET must be at least 32 bytes")
        assert repr(secret) not in str(refused.value) and f"{len(secret.encode())} bytes" in str(refused.value)


@pytest.mark.parametrize("too_short, long_enough", [("k" * 31, "k" * 32), ("é" * 15 + "k", "é" * 16),
                                                    (("0123456789abcdef" * 2)[:-1], "0123456789abcdef" * 2)])
def test_32_bytes_is_the_least_a_webhook_secret_may_have(too_short, long_enough):
    for read in (alert_settings_from_environment, master_secret_from_environment):
        with pytest.raises(SettingsError, match="^COMMCREDITS_WEBHOOK_SECRET must be at least 32 bytes"):
            read({"COMMCREDITS_WEBHOOK_SECRET": too_short})
    assert alert_settings_from_environment({"COMMCREDITS_WEBHOOK_SECRET": long_enough}).webhook_master_secret == \
        long_enough.encode()
    assert master_secret_from_environment({"COMMCREDITS_WEBHOOK_SECRET": long_enough}) == long_enough.encode()


# ----- the SMTP sender: defence in depth ------------------------------------------------------------

class RecordingAuthenticator:
    """Accepts any credentials and records them: a server that takes AUTH over plain TCP."""

    def __init__(self) -> None:
        self.given: list[tuple[str, bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism: str, auth_data: LoginPassword) -> AuthResult:
        self.given.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=True)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def plaintext_auth_server() -> Iterator[tuple[int, RecordingAuthenticator, Mailbox]]:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    authenticator, mailbox = RecordingAuthenticator(), Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield port, authenticator, mailbox
    controller.stop()


def send_one(port: int, **overrides) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=port, starttls=False, username=CREDENTIALS[0],
                            password=CREDENTIALS[1], timeout_s=TIMEOUT_S, **overrides)
    message = build_email(sender="billing-alerts@localhost", recipient=RECIPIENT, subject="Recharge failed",
                          text="text", html="<p>html</p>", message_id="1.recharge_failed.email@commcredits")
    sender = SmtpSender(settings)
    try:
        sender.send(message, RECIPIENT, lambda: None)
    finally:
        sender.close()


def test_the_sender_never_sends_auth_over_a_connection_without_tls_unless_allowed(plaintext_auth_server):
    """The settings refuse this already; the sender checks again on the connection itself."""
    port, authenticator, mailbox = plaintext_auth_server

    with pytest.raises(DeliveryFailed) as failed:
        send_one(port)

    assert (failed.value.code, failed.value.permanent) == ("smtp_auth_needs_tls", True)
    assert CREDENTIALS[1] not in str(failed.value)
    assert authenticator.given == [] and mailbox.messages == []

    send_one(port, allow_plaintext_auth=True)

    assert [(login, password) for _, login, password in authenticator.given] == [
        (CREDENTIALS[0].encode(), CREDENTIALS[1].encode())]
    assert len(mailbox.messages) == 1


# ----- end to end ----------------------------------------------------------------------------------

@pytest.mark.parametrize("environ, variable", [
    ({**MAIL_SERVER, "COMMCREDITS_SMTP_STARTTLS": "false"}, "COMMCREDITS_SMTP_STARTTLS"),
    ({"COMMCREDITS_WEBHOOK_SECRET": "short"}, "COMMCREDITS_WEBHOOK_SECRET"),
], ids=["auth without tls", "short webhook secret"])
def test_run_refuses_them_at_start_up_with_exit_2(tmp_path, environ, variable):
    result = run_cli({"COMMCREDITS_DATA_DIR": str(tmp_path / "data"), **environ}, "run")

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"commcredits: {variable} ")
    assert CREDENTIALS[1] not in line and "'short'" not in line
    assert not (tmp_path / "data").exists()  # nothing started, no store created


def test_the_webhook_secret_command_refuses_a_short_secret(tmp_path):
    result = run_cli({"COMMCREDITS_DATA_DIR": str(tmp_path / "data"), "COMMCREDITS_WEBHOOK_SECRET": "short"},
                         "alerts", "webhook-secret", "contoso")
    assert result.returncode == 2 and "COMMCREDITS_WEBHOOK_SECRET must be at least 32 bytes" in result.stderr
    assert result.stdout == ""  # no key derived from it
