"""I/O only: the store-and-forward outbox and the sinks events leave through."""
