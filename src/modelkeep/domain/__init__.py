"""Pure rules of the registry: no I/O, no storage, no frameworks."""
