from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class SecretKind(models.TextChoices):
    ENVIRONMENT = "env", "Environment variable"
    ENCRYPTED = "encrypted", "Encrypted in the database"


class SecretReference(models.Model):
    """A credential by reference: the name of an environment variable, or a value encrypted with a key from the
    environment. The plain value is never stored, never shown in admin, and every read is audited."""

    name = models.SlugField(max_length=100, unique=True, help_text="How connectors refer to it, e.g. stripe_api_key.")
    description = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=16, choices=SecretKind.choices)
    env_var = models.CharField(max_length=200, blank=True, help_text="For an environment variable: its name.")
    ciphertext = models.TextField(blank=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_read_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "secret"
        permissions = [("rotate_secretreference", "Can rotate secrets")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.kind == SecretKind.ENVIRONMENT and not self.env_var:
            raise ValidationError({"env_var": "Name the environment variable."})
