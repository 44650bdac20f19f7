"""The Django app of the database tests: two models over pg.SCHEMA's tables (not managed:
the schema is loaded by tests/pg.py), and views that run an N+1 loop and its fix."""
