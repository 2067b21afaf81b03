"""Use cases: load, decide with the domain's rules, act through the ports, commit."""
