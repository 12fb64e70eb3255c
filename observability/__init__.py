"""Logs (and, later, metrics) shared by every tillflow process."""
