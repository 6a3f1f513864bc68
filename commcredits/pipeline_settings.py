"""Where the live pipeline's topics are, from the environment (docs/pipeline.md).

- `KAFKA_BOOTSTRAP_SERVERS`: `host:port[,host:port...]`; unset → `commcredits run` starts the
  embedded broker.
- `COMMCREDITS_CDR_TOPIC` (`cdr.v1`), `COMMCREDITS_EVENTS_TOPIC` (`billing-events.v1`),
  `COMMCREDITS_DLQ_TOPIC` (`cdr.dlq.v1`), `COMMCREDITS_CONSUMER_GROUP` (`commcredits-rater`).
"""

import os
from dataclasses import dataclass

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


def topics_from_environment(environ: dict[str, str] | None = None) -> Topics:
    environ = os.environ if environ is None else environ
    return Topics(
        cdrs=environ.get("COMMCREDITS_CDR_TOPIC") or DEFAULT_CDR_TOPIC,
        events=environ.get("COMMCREDITS_EVENTS_TOPIC") or DEFAULT_EVENTS_TOPIC,
        dead_letters=environ.get("COMMCREDITS_DLQ_TOPIC") or DEFAULT_DLQ_TOPIC,
        consumer_group=environ.get("COMMCREDITS_CONSUMER_GROUP") or DEFAULT_CONSUMER_GROUP,
    )


def bootstrap_servers_from_environment(environ: dict[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
