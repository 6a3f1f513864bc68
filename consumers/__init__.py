"""Adapters that consume Kafka topics: the CDR consumer (`cdr_consumer`, `cdr_rating`, dead
letters, the expiry scheduler) rates `cdr.v1` into the store, and the alert consumer
(`consumers.alerts`, a bounded context of its own) turns `billing-events.v1` into e-mails,
webhooks and `alerts.v1`. They sit above the projections and the application core and below the
entry points (docs/architecture.md)."""
