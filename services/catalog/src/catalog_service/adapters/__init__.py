"""Everything that talks to something outside: PostgreSQL, Redis."""
