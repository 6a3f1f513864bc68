"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked: it parses,
has the services the design asks for, and every engine command is one the CLI accepts."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from commcredits.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENGINE_SERVICES = {name: service for name, service in COMPOSE["services"].items() if "build" in service}


def test_the_stack_has_kafka_postgres_and_the_engines_processes():
    assert {"kafka", "postgres", "consumer", "relay", "alerts"} <= COMPOSE["services"].keys()
    assert COMPOSE["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    for service in ENGINE_SERVICES.values():
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["environment"]["COMMCREDITS_DATABASE_URL"].startswith("postgresql://")


@pytest.mark.parametrize("name", sorted(name for name, service in ENGINE_SERVICES.items() if "command" in service))
def test_each_engine_command_is_accepted_by_the_cli(name):
    result = CliRunner().invoke(app, [*ENGINE_SERVICES[name]["command"], "--help"])
    assert result.exit_code == 0, result.output


def test_the_image_copies_every_package_of_the_distribution():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("domain", "projections", "consumers", "producers", "commcredits"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_consumer_scales_out_within_the_cdr_partitions_and_the_relay_does_not():
    from commcredits.live_pipeline import DEFAULT_CDR_PARTITIONS

    consumer, relay = COMPOSE["services"]["consumer"], COMPOSE["services"]["relay"]
    assert 1 < consumer["deploy"]["replicas"] <= DEFAULT_CDR_PARTITIONS  # an instance beyond a partition idles
    assert "container_name" not in consumer  # replicas need names of their own
    assert relay.get("deploy", {}).get("replicas", 1) == 1  # one relay per store: positions are published once


def test_one_alert_consumer_takes_its_mail_server_and_signing_key_from_the_host():
    alerts = COMPOSE["services"]["alerts"]
    assert alerts.get("deploy", {}).get("replicas", 1) == 1  # its dispatchers would compete for the same deliveries
    for name in ("COMMCREDITS_SMTP_HOST", "COMMCREDITS_SMTP_PORT", "COMMCREDITS_SMTP_STARTTLS",
                 "COMMCREDITS_SMTP_USERNAME", "COMMCREDITS_SMTP_PASSWORD", "COMMCREDITS_WEBHOOK_SECRET"):
        assert alerts["environment"][name].startswith(f"${{{name}"), name  # never a secret written in the file
