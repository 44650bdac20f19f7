"""Views the Django database tests request.  The lines marked `# line:` are the call sites
the tests expect (found by the marker, never by number)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from .models import Article, User


def articles(request: HttpRequest) -> JsonResponse:
    names = []
    for article in Article.objects.order_by("id"):  # line: django-articles-list
        names.append(article.author.name)  # line: django-n-plus-one
    return JsonResponse({"authors": names})


def articles_fixed(request: HttpRequest) -> JsonResponse:
    names = []
    for article in Article.objects.select_related("author").order_by("id"):  # line: django-fixed
        names.append(article.author.name)
    return JsonResponse({"authors": names})


def secrets(request: HttpRequest) -> JsonResponse:
    """Secrets the default rules recognise: e-mail and card values (positional, from the
    ORM) and parameters named password and token (raw SQL with a dict)."""
    from pg import CARD, EMAIL, PASSWORD, TOKEN

    found = User.objects.filter(email=EMAIL, card=CARD).count()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM nprof_user WHERE password = %(password)s "
                    "AND token = %(token)s", {"password": PASSWORD, "token": TOKEN})
    return JsonResponse({"found": found})


def secrets_by_column(request: HttpRequest) -> JsonResponse:
    """A password and a token compared by the ORM: positional parameters whose only hint
    is the column they are compared with."""
    from pg import PASSWORD, TOKEN

    return JsonResponse({"found": User.objects.filter(password=PASSWORD, token=TOKEN).count()})
