"""Device emulators on real pseudo-terminals, so tests and the demo exercise the real serial path."""
