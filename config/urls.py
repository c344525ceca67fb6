"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.urls import include, path

from config.api import api
from orders import views
from realtime.health import healthz
from realtime.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
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
