"""The tests' URLconf: django_app's URLs, plus the database views under /db/."""

from __future__ import annotations

from django.urls import path

import django_app

from . import views

urlpatterns = [
    *django_app.urlpatterns,
    path("db/articles/", views.articles),
    path("db/articles-fixed/", views.articles_fixed),
    path("db/secrets/", views.secrets),
    path("db/secrets-by-column/", views.secrets_by_column),
]
