"""The user service's I/O: PostgreSQL reads (reads.py, coalescing.py), writes in a unit of work
(repository.py, unit_of_work.py, outbox.py), the LISTEN fan-out (notifications.py,
update_hub.py), argon2 hashing (passwords.py) and the engine and pools (database.py)."""
