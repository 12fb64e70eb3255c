"""``python -m cli`` is ``tillflow``."""

from cli.main import app

app(prog_name="tillflow")
