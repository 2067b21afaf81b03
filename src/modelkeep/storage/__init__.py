"""Adapters: the only code that touches databases and files of the store."""
