"""Bytewax dataflows: validate, featurise, learn and sink the event streams ."""
