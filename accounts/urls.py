"""Authentication routes: the site's login pages (password, then the staff's code) and logout. The API's token
endpoints are routed by config/api.py."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/login/code/", views.SecondFactorView.as_view(), name="login-code"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
