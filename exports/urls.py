from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:project_id>/exports", api.project_exports, name="api-project-exports"),
    path("exports/options", api.options, name="api-export-options"),
    path("exports/<uuid:job_id>", api.job, name="api-export"),
    path("exports/<uuid:job_id>/retry", api.retry, name="api-export-retry"),
]
