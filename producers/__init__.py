"""Adapters that produce to Kafka: the event relay (the store's log to `billing-events.v1`,
exactly once per position) and the CDR publisher behind `publish-cdrs`."""
