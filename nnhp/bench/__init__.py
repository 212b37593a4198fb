"""Optimizer benchmarks (placeholder, filled in below)."""
