"""Static checks of the deployment files (compose, Dockerfiles, scrape config) against the code.

No Docker engine runs on the machines this project is built on, so these checks are how
docker-compose.yml and the Dockerfiles stay true: `python -m shop_devstack check` runs them,
tests/consistency asserts on them.
"""
