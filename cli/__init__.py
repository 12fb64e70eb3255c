"""The ``tillflow`` command."""
