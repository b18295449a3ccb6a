"""bolt listeners, one module per kind (commands, actions, views, events), each with register(app, services)."""
