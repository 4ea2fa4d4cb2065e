"""Inference backends behind one interface, and model bundles (files + card + sha256)."""
