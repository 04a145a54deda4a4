"""Create the staff role groups and give each exactly its permissions (governance/roles.py ROLE_PERMISSIONS)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from governance.roles import sync_roles


class Command(BaseCommand):
    help = "Create or update the staff role groups (run after every deploy's migrate; make run does it)."

    def handle(self, *args: object, **options: object) -> None:
        for group, count in sync_roles().items():
            self.stdout.write(f"{group}: {count} permissions")
