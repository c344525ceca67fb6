"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.urls import include, path

from integrations import api as integrations_api
from integrations.views import tracking_page
from orders import api, views
from realtime.health import healthz
from realtime.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("api/orders/", api.order_list, name="api-orders"),
    path("api/orders/<int:order_id>/", api.order_detail, name="api-order"),
    path("api/orders/<int:order_id>/status/", api.order_change_status, name="api-order-status"),
    path("api/webhooks/", integrations_api.webhook_list, name="api-webhooks"),
    path("api/webhooks/<int:endpoint_id>/", integrations_api.webhook_detail, name="api-webhook"),
    path("t/<str:token>", tracking_page, name="tracking-page"),
    path("healthz", healthz, name="healthz"),
    path("", views.home, name="home"),
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/<int:order_id>/", views.order_page, name="order-page"),
    path("staff/", views.staff_board, name="staff-board"),
    path("metrics", metrics_view, name="metrics"),
]
