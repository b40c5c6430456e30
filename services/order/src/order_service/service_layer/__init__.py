"""Use cases over the UnitOfWork and UserDirectory ports (no SQLAlchemy, broker or web here)."""
