from django.apps import AppConfig


class ReframingConfig(AppConfig):
    name = "reframing"
    verbose_name = "Follow the play"
