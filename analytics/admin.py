"""Admin registrations of the analytics app (one per model, as its models arrive)."""
