"""Alembic migrations of the event store's tables (``recsys/events.py`` runs ``upgrade head``
when it opens a store). Each revision checks for its tables first, so a store created before
migrations existed (by ``create_all``, no version table) upgrades in place."""
