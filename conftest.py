"""Repo-wide pytest set-up.

With --import-mode=importlib, pytest names gateway/tests/... modules `gateway.tests...` and would
create an empty namespace package `gateway` for the directory, shadowing the installed gateway
package. Importing the real package first makes pytest reuse it.
"""

import gateway  # noqa: F401
