"""Authentication routes: the site's login and logout pages and the API's token endpoints."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import api
from accounts.forms import LoginForm

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/auth/token/", api.obtain_token, name="api-token"),
    path("api/auth/refresh/", api.refresh_token, name="api-refresh"),
    path("api/auth/logout/", api.logout, name="api-logout"),
]
