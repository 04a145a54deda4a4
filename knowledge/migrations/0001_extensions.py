"""Install the PostgreSQL extensions retrieval depends on: pgvector (embeddings) and pg_trgm (fuzzy title match)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [VectorExtension(), TrigramExtension()]
