"""Alembic migrations of the bot's database; run at start-up by bot.persistence.store.Store.open (no alembic.ini needed)."""
