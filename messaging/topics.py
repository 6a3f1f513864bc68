"""Where the live pipeline's topics are, from the environment (docs/pipeline.md).

- `KAFKA_BOOTSTRAP_SERVERS`: `host:port[,host:port...]` (ports from 1 to 65535, no spaces); unset
  or blank → `commcredits run` starts the embedded broker.
- `COMMCREDITS_CDR_TOPIC` (`cdr.v1`), `COMMCREDITS_EVENTS_TOPIC` (`billing-events.v1`),
  `COMMCREDITS_DLQ_TOPIC` (`cdr.dlq.v1`): Kafka topic names (1-249 of `A-Z a-z 0-9 . _ -`);
  `COMMCREDITS_CONSUMER_GROUP` (`commcredits-rater`): printable ASCII without spaces.

A bad value is a `SettingsError` naming the variable (commands exit 2).
"""

from dataclasses import dataclass

from pydantic import Field

from application.environment_settings import EnvironmentSettings
from application.setting_values import BootstrapServers, GroupId, TopicName

DEFAULT_CDR_TOPIC = "cdr.v1"
DEFAULT_EVENTS_TOPIC = "billing-events.v1"
DEFAULT_DLQ_TOPIC = "cdr.dlq.v1"
DEFAULT_CONSUMER_GROUP = "commcredits-rater"


@dataclass(frozen=True)
class Topics:
    cdrs: str = DEFAULT_CDR_TOPIC
    events: str = DEFAULT_EVENTS_TOPIC
    dead_letters: str = DEFAULT_DLQ_TOPIC
    consumer_group: str = DEFAULT_CONSUMER_GROUP


class PipelineEnvironment(EnvironmentSettings):
    bootstrap_servers: BootstrapServers = Field(None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    cdr_topic: TopicName = Field(DEFAULT_CDR_TOPIC, validation_alias="COMMCREDITS_CDR_TOPIC")
    events_topic: TopicName = Field(DEFAULT_EVENTS_TOPIC, validation_alias="COMMCREDITS_EVENTS_TOPIC")
    dlq_topic: TopicName = Field(DEFAULT_DLQ_TOPIC, validation_alias="COMMCREDITS_DLQ_TOPIC")
    consumer_group: GroupId = Field(DEFAULT_CONSUMER_GROUP, validation_alias="COMMCREDITS_CONSUMER_GROUP")


def topics_from_environment(environ: dict[str, str] | None = None) -> Topics:
    settings = PipelineEnvironment.from_environment(environ)
    return Topics(cdrs=settings.cdr_topic, events=settings.events_topic, dead_letters=settings.dlq_topic,
                  consumer_group=settings.consumer_group)


def bootstrap_servers_from_environment(environ: dict[str, str] | None = None) -> str | None:
    return PipelineEnvironment.from_environment(environ).bootstrap_servers
