"""Sinks of the dataflow: each writer builds its clients once per process and writes in a
thread of its own, joined at each recovery epoch's end (overlap.py)."""
