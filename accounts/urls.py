"""Authentication routes: the site's login pages (password, then the staff's code) and logout, and the API's token
endpoints."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import api, views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/login/code/", views.SecondFactorView.as_view(), name="login-code"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/auth/token/", api.obtain_token, name="api-token"),
    path("api/auth/refresh/", api.refresh_token, name="api-refresh"),
    path("api/auth/logout/", api.logout, name="api-logout"),
]
