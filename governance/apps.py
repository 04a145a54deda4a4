from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles_after_migrate(sender: AppConfig, **kwargs: object) -> None:
    """Keep the role groups whole after every migrate and flush (a test database flush empties auth_group), the
    same way Django re-creates permissions on post_migrate."""
    from governance.roles import sync_roles

    sync_roles()


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, sender=self, dispatch_uid="governance.sync_roles")
