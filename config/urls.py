"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.urls import include, path

from config.api import api
from integrations.views import tracking_page
from orders import views
from realtime.health import healthz
from realtime.metrics import metrics_view
from realtime.views import asyncapi_document

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before the API's routes, so no route of theirs can shadow it.
    path("api/asyncapi.json", asyncapi_document, name="api-asyncapi"),
    path("", include("accounts.urls")),
    # The JSON API (config/api.py): orders, webhooks, and the token endpoints of accounts/api.py.
    path("api/", api.urls),
    # A guest tracking link (integrations/tracking.py).
    path("t/<str:token>", tracking_page, name="tracking-page"),
    path("healthz", healthz, name="healthz"),
    # The language switch (Django's set_language: POST language, remembered in a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("", views.home, name="home"),
    path("orders/", views.my_orders, name="my-orders"),
    path("orders/cards/", views.my_order_cards, name="my-order-cards"),
    path("orders/<int:order_id>/", views.order_page, name="order-page"),
    path("staff/", views.staff_board, name="staff-board"),
    path("staff/rows/", views.staff_board_rows, name="staff-board-rows"),
    path("staff/counts/", views.staff_board_counts, name="staff-board-counts"),
    path("metrics", metrics_view, name="metrics"),
]
