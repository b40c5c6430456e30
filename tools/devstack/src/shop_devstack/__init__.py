"""The whole system on one machine: launcher (make up/down), narrated demo, load generator."""
