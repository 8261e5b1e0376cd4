"""State: answers, conversations, feedback — SQLAlchemy async on SQLite or PostgreSQL."""
