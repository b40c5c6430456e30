"""Shared library of the shop monorepo."""
