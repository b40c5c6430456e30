"""The API gateway: one front door for every request from outside."""
