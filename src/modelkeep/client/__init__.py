"""The SDK: one typed client with the verbs of the CLI."""
