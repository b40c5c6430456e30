"""The web service's domain: sign-up rules, order states as a shopper follows them, and the
console's snapshot built from scraped metrics; no I/O."""
