"""Kafka producers (the event relay, the CDR publisher): arrive with the pipeline issue."""
