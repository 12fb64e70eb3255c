"""Benchmarks: `make bench` runs them; each writes JSON to benchmarks/results/."""
