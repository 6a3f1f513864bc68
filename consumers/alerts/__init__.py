"""Alerts to billing contacts, one bounded context: from `billing-events.v1` (the projection and
its rules) through the outbox to the channels (SMTP, signed webhooks, `alerts.v1`), with retries
and dead deliveries (docs/alerts.md)."""
