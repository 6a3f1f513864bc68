"""commcredits: the application layer — event store, command handling, simulate and the CLI."""

__version__ = "0.1.0"
