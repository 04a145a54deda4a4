from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from connectors import adapters  # noqa: F401 - each adapter module registers itself in connectors.base.ADAPTERS
        from connectors.actions import EXECUTORS
        from governance.executors import ACTION_EXECUTORS

        for action, executor in EXECUTORS.items():
            ACTION_EXECUTORS.setdefault(action, executor)

        from connectors.readiness import helpdesk_readiness
        from governance.readiness import READINESS_CHECKS

        READINESS_CHECKS["helpdesk"] = helpdesk_readiness  # replaces governance's placeholder, in its place
