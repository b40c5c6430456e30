"""The web service: the storefront at / and the admin's live system console at /console."""
