"""Health of a running service: ``status.json`` in the state dir and a Prometheus textfile."""
