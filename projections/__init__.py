"""Read models: pure functions of the event sequence, each fed from the event store's log."""
