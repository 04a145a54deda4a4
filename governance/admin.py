"""Admin registrations of the governance app (one per model, as its models arrive)."""
