"""Admin registrations of the knowledge app (one per model, as its models arrive)."""
