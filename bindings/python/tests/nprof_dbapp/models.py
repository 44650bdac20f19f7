from __future__ import annotations

from django.db import models


class SchemaModel(models.Model):
    """A model over one of pg.SCHEMA's tables: tests/pg.py creates them, so Django does
    not manage them, and they keep their own names (`db_table`) rather than Django's."""

    class Meta:
        abstract = True
        app_label = "nprof_dbapp"
        managed = False


class Author(SchemaModel):
    name = models.TextField()

    class Meta(SchemaModel.Meta):
        db_table = "nprof_author"


class Article(SchemaModel):
    title = models.TextField()
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="articles")

    class Meta(SchemaModel.Meta):
        db_table = "nprof_article"


class User(SchemaModel):
    name = models.TextField()
    email = models.TextField(null=True)
    password = models.TextField(null=True)
    token = models.TextField(null=True)
    card = models.TextField(null=True)

    class Meta(SchemaModel.Meta):
        db_table = "nprof_user"
