"""The use cases (users.py) over abstract ports (ports.py, unit_of_work.py); no I/O library here."""
