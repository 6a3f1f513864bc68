"""commcredits: the entry points (the CLI, `run`, `demo`, `simulate`) and the composition root
that wires the application core, the adapters and their settings (docs/architecture.md)."""

__version__ = "0.1.0"
