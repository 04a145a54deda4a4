from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"

    def ready(self) -> None:
        from governance.metrics import METRIC_PROVIDERS
        from governance.readiness import READINESS_CHECKS
        from knowledge.metrics import source_freshness
        from knowledge.readiness import knowledge_readiness

        READINESS_CHECKS["knowledge_sources"] = knowledge_readiness  # replaces governance's placeholder, in its place
        METRIC_PROVIDERS["source_freshness"] = source_freshness
