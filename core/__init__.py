"""Cross-cutting parts of the service: extensions, clock, database types, logging, metrics."""
