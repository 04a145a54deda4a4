"""Admin registrations of the connectors app (one per model, as its models arrive)."""
