"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.urls import include, path

from config.api import api
from orders import views
from realtime.health import healthz
from realtime.metrics import metrics_view
from realtime.views import asyncapi_document

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before the API's routes, so no route of theirs can shadow it.
    path("api/asyncapi.json", asyncapi_document, name="api-asyncapi"),
    path("", include("accounts.urls")),
    # The JSON API (config/api.py): orders, and the token endpoints of accounts/api.py.
    path("api/", api.urls),
    path("healthz", healthz, name="healthz"),
    path("", views.home, name="home"),
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/<int:order_id>/", views.order_page, name="order-page"),
    path("staff/", views.staff_board, name="staff-board"),
    path("metrics", metrics_view, name="metrics"),
]
