"""The billing rules of SPEC.md as pure code: values, rules and event-sourced aggregates.

Nothing in this package performs I/O, reads a clock or settings; everything it needs from the
outside world (time, payments) is passed in.
"""
