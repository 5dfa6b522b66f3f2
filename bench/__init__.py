"""Benchmarks: ``python -m bench.<name>``; each prints one JSON line last. Figures go in the README."""
