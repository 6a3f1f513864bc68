"""The application core: the event-sourced application and its store (sealed recorders, the
set-up lock, the transcoder), the billing service that meets commands with aggregates, the
commands and their wire inputs, the settings and reference data. It imports only the domain."""
