"""Admin registrations of the agent app (one per model, as its models arrive)."""
