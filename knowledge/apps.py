from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge"

    def ready(self) -> None:
        from governance.readiness import READINESS_CHECKS
        from knowledge.readiness import knowledge_readiness

        READINESS_CHECKS["knowledge_sources"] = knowledge_readiness  # replaces governance's placeholder, in its place
