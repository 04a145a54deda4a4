from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "qa"
    verbose_name = "QA review"

    def ready(self) -> None:
        from governance.metrics import METRIC_PROVIDERS, METRICS
        from qa.metrics import EXTRA_METRICS, PROVIDERS

        # Governance reads the gates' numbers through this registry (governance/metrics.py); update() is idempotent
        # when ready() runs again.
        METRIC_PROVIDERS.update(PROVIDERS)
        for name, info in EXTRA_METRICS.items():
            METRICS.setdefault(name, info)
