"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.urls import include, path

from orders import api, views
from realtime.health import healthz
from realtime.metrics import metrics_view
from realtime.views import asyncapi_document

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before the API's routes, so no route of theirs can shadow it.
    path("api/asyncapi.json", asyncapi_document, name="api-asyncapi"),
    path("", include("accounts.urls")),
    path("api/orders/", api.order_list, name="api-orders"),
    path("api/orders/<int:order_id>/", api.order_detail, name="api-order"),
    path("api/orders/<int:order_id>/status/", api.order_change_status, name="api-order-status"),
    path("healthz", healthz, name="healthz"),
    path("", views.home, name="home"),
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/<int:order_id>/", views.order_page, name="order-page"),
    path("staff/", views.staff_board, name="staff-board"),
    path("metrics", metrics_view, name="metrics"),
]
