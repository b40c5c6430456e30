"""Use cases of the web service, over the abstractions of ports.py."""
