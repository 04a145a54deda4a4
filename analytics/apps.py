from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics.metrics import EXTRA_METRICS, PROVIDERS
        from governance.metrics import METRIC_PROVIDERS, METRICS

        # Governance reads the gates' numbers through this registry (governance/metrics.py); update() is idempotent
        # when ready() runs again.
        METRIC_PROVIDERS.update(PROVIDERS)
        for name, info in EXTRA_METRICS.items():
            METRICS.setdefault(name, info)
