"""Kafka consumers (the CDR consumer, the alert consumer): arrive with the pipeline issues."""
