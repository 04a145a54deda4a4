from django.apps import AppConfig


class SuitesConfig(AppConfig):
    name = "suites"
    verbose_name = "Regression suites"

    def ready(self) -> None:
        from governance.metrics import METRIC_PROVIDERS
        from suites.metrics import regression_pass_rate

        # Governance reads the gates' numbers through this registry (governance/metrics.py); idempotent.
        METRIC_PROVIDERS["regression_pass_rate"] = regression_pass_rate
