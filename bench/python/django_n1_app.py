"""The Django project bench_django_n1.py serves under gunicorn, in one file: settings, two
models, one view with an N+1 loop, the URLs and the WSGI application.

The view runs 21 queries: one for 20 articles, then one per article for its author
(`article.author.name`, no select_related: the N+1 pattern nanoprof flags), and returns an
HTML page with a </body>, since django-debug-toolbar only injects itself into HTML.

NANOPROF_BENCH_VARIANT picks the variant:
  bare        no profiler, DEBUG=False
  mw          nanoprof.django.PerformanceMiddleware alone, production-like, DEBUG=False
  nanoprof    the same plus nanoprof.db.QueryTimer("django") (Django's execute_wrappers)
  bare-debug  no profiler, DEBUG=True (the toolbar's like-for-like anchor: DEBUG=True alone
              makes Django keep every query in connection.queries)
  toolbar     django-debug-toolbar in its default configuration, DEBUG=True
NANOPROF_BENCH_PG: the libpq conninfo of the database (host is the socket directory).
Connections persist across requests (CONN_MAX_AGE=None), as in production: with the
default of 0 every request would pay a new PostgreSQL connection.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import django
from django.conf import settings

VARIANTS = ("bare", "mw", "nanoprof", "bare-debug", "toolbar")
VARIANT = os.environ.get("NANOPROF_BENCH_VARIANT", "bare")
if VARIANT not in VARIANTS:
    raise SystemExit(f"NANOPROF_BENCH_VARIANT={VARIANT!r}: use {', '.join(VARIANTS)}")
DEBUG = VARIANT in ("bare-debug", "toolbar")
APP = __name__  # this module is the Django app too (its models are below)
# Production-like nanoprof options, as bench_asgi_db.py's nanoprof-prod: headers only on
# ?profile=1 with the token, the reference's production thresholds.
NANOPROF = {"production": True, "token": "bench-token", "slow_query_threshold_ms": 200,
            "n_plus_one_threshold": 10}


def _database() -> dict[str, Any]:
    kv = dict(part.split("=", 1) for part in os.environ.get("NANOPROF_BENCH_PG", "").split())
    return {"ENGINE": "django.db.backends.postgresql", "NAME": kv.get("dbname", "postgres"),
            "USER": kv.get("user", "postgres"), "HOST": kv.get("host", ""),
            "PORT": kv.get("port", "5432"), "CONN_MAX_AGE": None}


installed = ["django.contrib.contenttypes", "django.contrib.staticfiles", APP]
middleware: list[str] = []
if VARIANT in ("mw", "nanoprof"):
    middleware.insert(0, "nanoprof.django.PerformanceMiddleware")
if VARIANT == "toolbar":
    installed.append("debug_toolbar")
    middleware.insert(0, "debug_toolbar.middleware.DebugToolbarMiddleware")

settings.configure(
    DEBUG=DEBUG,
    SECRET_KEY="nanoprof-bench-not-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    INTERNAL_IPS=["127.0.0.1"],
    ROOT_URLCONF=APP,
    INSTALLED_APPS=installed,
    MIDDLEWARE=middleware,
    DATABASES={"default": _database()},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": ["django.template.context_processors.request"]}}],
    STATIC_URL="/static/",
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    NANOPROF=NANOPROF,
    LOGGING_CONFIG=None,
)
django.setup()

from django.db import models  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.html import escape  # noqa: E402


class Author(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        app_label = APP
        db_table = "bench_author"


class Article(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)

    class Meta:
        app_label = APP
        db_table = "bench_article"


def articles(request: HttpRequest) -> HttpResponse:
    items = [f"<li>{escape(a.title)} by {escape(a.author.name)}</li>"  # N+1: one query each
             for a in Article.objects.order_by("id")[:20]]
    return HttpResponse("<!DOCTYPE html><html><head><title>Articles</title></head><body>"
                        "<h1>Articles</h1><ul>" + "".join(items) + "</ul></body></html>")


urlpatterns = [path("articles/", articles)]
if VARIANT == "toolbar":
    from debug_toolbar.toolbar import debug_toolbar_urls

    urlpatterns += debug_toolbar_urls()

if VARIANT == "nanoprof":
    try:
        from nanoprof.db import QueryTimer
    except ImportError as e:
        print(f"variant nanoprof needs nanoprof.db.QueryTimer, which does not import: {e}",
              file=sys.stderr)
        raise SystemExit(3) from e
    TIMER = QueryTimer("django").install()

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
