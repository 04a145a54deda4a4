from django.apps import AppConfig


class BrewlineConfig(AppConfig):
    name = "brewline"
    verbose_name = "Brewline Coffee (demo in-house system)"
    default_auto_field = "django.db.models.BigAutoField"
