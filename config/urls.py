"""HTTP routes: admin, JSON API, health, login and the live pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from orders import api, views
from orders.forms import AdminLoginForm, LoginForm
from realtime.health import healthz
from realtime.metrics import metrics_view

admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/auth/token/", api.obtain_token, name="api-token"),
    path("api/auth/refresh/", api.refresh_token, name="api-refresh"),
    path("api/auth/logout/", api.logout, name="api-logout"),
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
