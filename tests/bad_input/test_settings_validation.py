"""Item 6: every COMMCREDITS_* and KAFKA_* variable is checked when it is read, and `commcredits
run` reads them all before it starts anything: a bad value is exit 2 and one line naming the
variable, the value and what is expected.

Before: `COMMCREDITS_ALERT_MAX_ATTEMPTS=nan|inf` and `COMMCREDITS_SMTP_PORT=nan` crashed `run`
with a traceback (`int(float("nan"))`); `COMMCREDITS_ALERT_BACKOFF_S=nan`, `COMMCREDITS_SMTP_PORT=99999`,
`1e400` (inf), ` 5 ` and topics with spaces were accepted, to fail only on the first e-mail or
poll; a PostgreSQL URL with port 99999 was a `ValueError` traceback.
"""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from application.settings import SettingsError, future_tolerance_from_environment, store_from_environment
from consumers.alerts.settings import alert_settings_from_environment
from messaging.topics import bootstrap_servers_from_environment, topics_from_environment

RUN_TIMEOUT_S = 30  # a `run` that gets past its settings would start a broker and not exit by itself
STOP_TIMEOUT_S = 60  # for such a `run` to stop its pipeline and broker on SIGTERM
NUMBERS = ["nan", "inf", "-inf", "-1", "", "abc", "1e400", " 5 ", "5 ", "0x10", "1_000"]
FLAGS = ["", "abc", "yes", "no", "nan", " true", "2", "-1"]

# variable, what reads it, the bad values beyond the shared lists
SETTINGS = [
    ("COMMCREDITS_SMTP_PORT", alert_settings_from_environment, NUMBERS + ["0", "99999", "65536", "587.0"]),
    ("COMMCREDITS_ALERT_MAX_ATTEMPTS", alert_settings_from_environment, NUMBERS + ["0", "2.5", "101", "99999999999"]),
    ("COMMCREDITS_ALERT_BACKOFF_S", alert_settings_from_environment, NUMBERS + ["86401", "1e3", ".5", "-0"]),
    ("COMMCREDITS_ALERT_BACKOFF_CAP_S", alert_settings_from_environment, NUMBERS + ["86401", "1E2"]),
    ("COMMCREDITS_SMTP_TIMEOUT_S", alert_settings_from_environment, NUMBERS + ["0", "0.05", "301"]),
    ("COMMCREDITS_FUTURE_TOLERANCE_S", future_tolerance_from_environment, NUMBERS + ["86401", "1e2"]),
    ("COMMCREDITS_SMTP_STARTTLS", alert_settings_from_environment, FLAGS),
    ("COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH", alert_settings_from_environment, FLAGS),
    ("COMMCREDITS_SMTP_HOST", alert_settings_from_environment,
     ["smtp.example.com:587", "smtp example.com", "smtp://smtp.example.com", " smtp.example.com", "nan:inf"]),
    ("COMMCREDITS_SMTP_FROM", alert_settings_from_environment,
     ["abc", "Alerts <alerts@example.com>", " alerts@example.com", "alérts@example.com", "a@b@example.com"]),
    ("COMMCREDITS_SMTP_CA_FILE", alert_settings_from_environment, ["/nonexistent/ca.pem", "/"]),
    ("COMMCREDITS_ALERTS_TOPIC", alert_settings_from_environment, ["alerts v1", "alerts/v1", "x" * 250, " alerts"]),
    ("COMMCREDITS_CDR_TOPIC", topics_from_environment, ["cdr v1", "cdr:v1", "x" * 250, "nan!"]),
    ("COMMCREDITS_EVENTS_TOPIC", topics_from_environment, ["events v1", "é"]),
    ("COMMCREDITS_DLQ_TOPIC", topics_from_environment, ["dlq v1", "dlq,v1"]),
    ("COMMCREDITS_CONSUMER_GROUP", topics_from_environment, ["rater group", "é", "x" * 256]),
    ("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers_from_environment,
     ["abc", "localhost", "localhost:0", "localhost:99999", "localhost:nan", "localhost:1e400", " localhost:9092",
      "localhost:9092, other:9092", "localhost:9092,", "localhost: 9092"]),
    ("COMMCREDITS_DATABASE_URL", store_from_environment,
     ["abc", "nan", "mysql://db/x", "sqlite://", "postgresql://127.0.0.1/", "postgresql://127.0.0.1:99999/test",
      "postgresql://127.0.0.1:nan/test", "postgresql://127.0.0.1:0/test", "postgresql://u:pw@127.0.0.1:-1/test"]),
]
CASES = [pytest.param(name, read, value, id=f"{name}={value[:20]!r}") for name, read, values in SETTINGS
         for value in values]


@pytest.mark.parametrize("name, read, value", CASES)
def test_a_bad_value_is_a_settings_error_naming_the_variable(name, read, value):
    with pytest.raises(SettingsError) as refused:
        read({"COMMCREDITS_SMTP_HOST": "smtp.example.com", "COMMCREDITS_DATABASE_URL": "memory", name: value})

    message = str(refused.value)
    assert refused.value.variable == name and refused.value.code == "invalid_setting"
    assert message.startswith(f"{name} must ") and "\n" not in message
    assert " got " in message and refused.value.expected


def test_the_message_quotes_the_value_and_says_what_is_expected():
    with pytest.raises(SettingsError) as refused:
        alert_settings_from_environment({"COMMCREDITS_SMTP_PORT": "99999"})
    assert str(refused.value) == "COMMCREDITS_SMTP_PORT must be a whole number from 1 to 65535, got '99999'"

    with pytest.raises(SettingsError) as refused:
        alert_settings_from_environment({"COMMCREDITS_ALERT_BACKOFF_S": "nan"})
    assert str(refused.value) == ("COMMCREDITS_ALERT_BACKOFF_S must be a number of seconds from 0 to 86400, "
                                  "written like 10 or 0.5, got 'nan'")


def test_a_password_in_a_database_url_is_not_shown():
    with pytest.raises(SettingsError) as refused:
        store_from_environment({"COMMCREDITS_DATABASE_URL": "postgresql://billing:hunter2@db:99999/billing"})
    assert "hunter2" not in str(refused.value) and "postgresql://billing:***@db:99999/billing" in str(refused.value)


# variable, what reads it, the value read from it: the ends of its range, then one step beyond each
RANGES = [
    ("COMMCREDITS_SMTP_PORT", lambda environ: alert_settings_from_environment(environ).smtp.port,
     [("1", 1), ("65535", 65535)], ["0", "65536"]),
    ("COMMCREDITS_ALERT_MAX_ATTEMPTS", lambda environ: alert_settings_from_environment(environ).retry.max_attempts,
     [("1", 1), ("100", 100)], ["0", "101"]),
    ("COMMCREDITS_ALERT_BACKOFF_S", lambda environ: alert_settings_from_environment(environ).retry.backoff_s,
     [("0", 0.0), ("0.5", 0.5), ("86400", 86400.0)], ["86400.001"]),
    ("COMMCREDITS_ALERT_BACKOFF_CAP_S", lambda environ: alert_settings_from_environment(environ).retry.backoff_cap_s,
     [("0", 0.0), ("86400", 86400.0)], ["86401"]),
    ("COMMCREDITS_SMTP_TIMEOUT_S", lambda environ: alert_settings_from_environment(environ).send_timeout_s,
     [("0.1", 0.1), ("300", 300.0)], ["0.09", "300.5"]),
    ("COMMCREDITS_FUTURE_TOLERANCE_S", future_tolerance_from_environment,
     [("0", timedelta(0)), ("2.5", timedelta(seconds=2.5)), ("86400", timedelta(days=1))], ["86400.5"]),
    ("COMMCREDITS_SMTP_STARTTLS", lambda environ: alert_settings_from_environment(environ).smtp.starttls,
     [("true", True), ("FALSE", False), ("1", True), ("0", False)], ["on", "off"]),
    ("COMMCREDITS_SMTP_ALLOW_PLAINTEXT_AUTH",
     lambda environ: alert_settings_from_environment(environ).smtp.allow_plaintext_auth,
     [("true", True), ("false", False)], ["yes", "no"]),
    ("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers_from_environment,
     [("kafka-1.internal:9092,10.0.0.7:19092,[::1]:9092", "kafka-1.internal:9092,10.0.0.7:19092,[::1]:9092"),
      ("localhost:65535", "localhost:65535")], ["localhost:65536", "kafka-1:9092, kafka-2:9092"]),
    ("COMMCREDITS_DLQ_TOPIC", lambda environ: topics_from_environment(environ).dead_letters,
     [("cdr.dlq_v2-test", "cdr.dlq_v2-test"), ("x" * 249, "x" * 249)], ["x" * 250, "cdr dlq"]),
]


@pytest.mark.parametrize("name, read, accepted, refused", RANGES, ids=[row[0] for row in RANGES])
def test_the_ends_of_each_range_are_accepted_and_one_step_beyond_is_refused(name, read, accepted, refused):
    environ = {"COMMCREDITS_SMTP_HOST": "smtp.example.com"}
    assert [read({**environ, name: text}) for text, _ in accepted] == [value for _, value in accepted]
    for text in refused:
        with pytest.raises(SettingsError, match=f"^{name} must "):
            read({**environ, name: text})


def test_blank_means_unset_for_names_and_secrets_but_is_an_error_for_numbers_and_flags():
    blank = {name: "" for name in ("COMMCREDITS_SMTP_HOST", "COMMCREDITS_SMTP_USERNAME", "COMMCREDITS_SMTP_PASSWORD",
                                   "COMMCREDITS_WEBHOOK_SECRET", "COMMCREDITS_ALERTS_TOPIC", "COMMCREDITS_CDR_TOPIC",
                                   "KAFKA_BOOTSTRAP_SERVERS")}
    assert alert_settings_from_environment(blank).smtp is None  # as docker-compose passes an unset host
    assert alert_settings_from_environment(blank).topic == "alerts.v1"
    assert topics_from_environment(blank).cdrs == "cdr.v1" and bootstrap_servers_from_environment(blank) is None
    for name in ("COMMCREDITS_SMTP_PORT", "COMMCREDITS_ALERT_MAX_ATTEMPTS", "COMMCREDITS_SMTP_STARTTLS"):
        with pytest.raises(SettingsError, match=f"^{name} must .*, got ''$"):
            alert_settings_from_environment({**blank, "COMMCREDITS_SMTP_HOST": "smtp.example.com", name: ""})


def test_an_unset_future_tolerance_is_300_seconds_and_a_blank_one_an_error():
    assert future_tolerance_from_environment({}) == timedelta(seconds=300)
    with pytest.raises(SettingsError, match="^COMMCREDITS_FUTURE_TOLERANCE_S must "):
        future_tolerance_from_environment({"COMMCREDITS_FUTURE_TOLERANCE_S": ""})


def test_only_the_mapping_given_is_read(monkeypatch):
    monkeypatch.setenv("COMMCREDITS_SMTP_PORT", "nan")
    assert alert_settings_from_environment({"COMMCREDITS_SMTP_HOST": "h"}).smtp.port == 587
    with pytest.raises(SettingsError, match="COMMCREDITS_SMTP_PORT"):
        alert_settings_from_environment()  # None: the process environment


# ----- end to end: `commcredits run` -------------------------------------------------------------

RUN_CASES = [
    ("COMMCREDITS_ALERT_MAX_ATTEMPTS", "nan", "a whole number from 1 to 100"),
    ("COMMCREDITS_ALERT_MAX_ATTEMPTS", "inf", "a whole number from 1 to 100"),
    ("COMMCREDITS_SMTP_PORT", "nan", "a whole number from 1 to 65535"),
    ("COMMCREDITS_SMTP_PORT", "99999", "a whole number from 1 to 65535"),
    ("COMMCREDITS_ALERT_BACKOFF_S", "nan", "a number of seconds from 0 to 86400"),
    ("COMMCREDITS_FUTURE_TOLERANCE_S", "1e400", "a number of seconds from 0 to 86400"),
    ("COMMCREDITS_SMTP_STARTTLS", "maybe", "true or false"),
    ("KAFKA_BOOTSTRAP_SERVERS", "localhost:99999", "host:port"),
    ("COMMCREDITS_CDR_TOPIC", "cdr v1", "a Kafka topic name"),
    ("COMMCREDITS_DATABASE_URL", "postgresql://127.0.0.1:99999/test", "port is from 1 to 65535"),
]


def run_cli(environ: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    """The `commcredits` command as an operator runs it, with `environ` instead of this process's
    COMMCREDITS_* and KAFKA_* variables. A command still running after `RUN_TIMEOUT_S` got past its
    settings: it is stopped with SIGTERM (`run` then stops the broker it started) and the test fails."""
    environment = {key: text for key, text in os.environ.items() if not key.startswith(("COMMCREDITS_", "KAFKA_"))}
    command = str(Path(sys.executable).with_name("commcredits"))
    process = subprocess.Popen([command, *argv], env=environment | environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.terminate()
        _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
        pytest.fail(f"`commcredits {' '.join(argv)}` started instead of refusing its settings: {stderr[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def commcredits_run(tmp_path: Path, name: str, value: str, *args: str) -> subprocess.CompletedProcess:
    """`commcredits run` with one variable set to `value`, and a mail server configured."""
    return run_cli({"COMMCREDITS_DATA_DIR": str(tmp_path / "data"), "COMMCREDITS_SMTP_HOST": "smtp.example.com",
                        name: value}, "run", *args)


@pytest.mark.parametrize("name, value, expected", RUN_CASES, ids=[f"{n}={v}" for n, v, _ in RUN_CASES])
def test_run_with_a_bad_setting_exits_2_with_one_line_and_starts_nothing(tmp_path, name, value, expected):
    result = commcredits_run(tmp_path, name, value)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"commcredits: {name} must ") and expected in line and repr(value) in line
    assert not (tmp_path / "data").exists()  # no store, no broker log: nothing was started


def test_each_role_of_run_checks_every_setting_at_start_up(tmp_path):
    """A bad e-mail setting stops even `run --role relay`, which sends no e-mail: the roles of a
    deployment share one environment (docker-compose's `*engine`), and the first process to start
    is the one to say it is wrong."""
    result = commcredits_run(tmp_path, "COMMCREDITS_SMTP_TIMEOUT_S", "inf", "--role", "relay")
    assert result.returncode == 2 and "COMMCREDITS_SMTP_TIMEOUT_S must be" in result.stderr
    assert "Traceback" not in result.stderr
