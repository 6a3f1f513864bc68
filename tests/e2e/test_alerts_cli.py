"""`commcredits alerts` on a store where nothing was sent yet: the answers and exit codes."""

import pytest
from typer.testing import CliRunner

from commcredits.cli import app

runner = CliRunner()


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COMMCREDITS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COMMCREDITS_DATABASE_URL", raising=False)
    monkeypatch.delenv("COMMCREDITS_WEBHOOK_SECRET", raising=False)
    created = runner.invoke(app, ["org", "create", "contoso", "--name", "Contoso", "--country", "US",
                                  "--currency", "USD", "--at", "2026-01-01T00:00:00Z"])
    assert created.exit_code == 0, created.output
    return tmp_path


def test_an_organization_with_no_alerts_yet_says_so(store_dir):
    result = runner.invoke(app, ["alerts", "list", "contoso"])
    assert result.exit_code == 0 and "no alerts for organization 'contoso' yet" in result.stdout
    assert runner.invoke(app, ["alerts", "list", "contoso", "--json"]).stdout.strip() == "[]"


def test_an_unknown_organization_is_refused_with_its_code(store_dir):
    result = runner.invoke(app, ["alerts", "list", "fabrikam"])
    assert result.exit_code == 1 and "unknown_organization" in result.output


def test_retry_needs_ids_or_all_and_an_empty_dead_letter_store_is_said(store_dir):
    assert runner.invoke(app, ["alerts", "retry"]).exit_code == 2
    assert runner.invoke(app, ["alerts", "retry", "x", "--all"]).exit_code == 2
    assert runner.invoke(app, ["alerts", "failed"]).stdout.strip() == "no failed deliveries"
    assert runner.invoke(app, ["alerts", "retry", "--all"]).stdout.strip() == "0 deliveries queued again"


def test_each_organization_has_its_own_stable_webhook_key(store_dir):
    first = runner.invoke(app, ["alerts", "webhook-secret", "contoso"]).stdout.strip()
    again = runner.invoke(app, ["alerts", "webhook-secret", "contoso"]).stdout.strip()
    other = runner.invoke(app, ["alerts", "webhook-secret", "fabrikam"]).stdout.strip()
    assert first == again and first != other and len(bytes.fromhex(first)) == 32


def test_bad_alert_settings_are_a_usage_error(store_dir, monkeypatch):
    monkeypatch.setenv("COMMCREDITS_ALERT_MAX_ATTEMPTS", "many")
    result = runner.invoke(app, ["alerts", "retry", "--all"])
    assert result.exit_code == 2 and "COMMCREDITS_ALERT_MAX_ATTEMPTS" in result.output
