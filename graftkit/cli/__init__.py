"""The `graftkit` command line (typer); every command is a thin wrapper over a library function."""
from graftkit.cli.main import app, main

__all__ = ["app", "main"]
