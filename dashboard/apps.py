from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The support lead's pages: the metrics dashboard, ROI and the launch roadmap (docs/dashboard.md). It reads every
    app (analytics, governance, knowledge, agent, qa, suites); no app reads it."""

    name = "dashboard"
    verbose_name = "Dashboard and ROI"
