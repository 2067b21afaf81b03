"""The HTTP API: the registry's services over REST, for remote SDKs, CLIs and replicas."""
