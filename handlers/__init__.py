"""Platform-neutral use cases: a chat request in, a Reply out."""
