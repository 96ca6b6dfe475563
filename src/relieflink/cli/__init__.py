"""The ``relieflink`` command line (Typer + Rich), calling the same services as the API."""

from relieflink.cli.main import app

__all__ = ["app"]
