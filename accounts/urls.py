from django.urls import path

from . import views

urlpatterns = [
    path("", views.account, name="account"),
    path("delete/", views.delete_account, name="delete_account"),
    path("deleted/", views.account_deleted, name="account_deleted"),
    path("data-exports/", views.start_data_export, name="start_data_export"),
    path("data-exports/<uuid:export_id>", views.data_export_status, name="data_export_status"),
    path(
        "data-exports/<uuid:export_id>/download",
        views.download_data_export,
        name="download_data_export",
    ),
]
