"""modelkeep's version, in a module of its own: the package root, the CLI and the API
app read it without importing one another."""

__version__ = "0.1.0"
