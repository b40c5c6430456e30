"""One migrate entry point for every service: `python -m shop_common.migrations <package>`.

The compose jobs and the launcher run it (their migrations are proven by every end-to-end run);
here: each service's scripts are found, each has its own advisory lock key, and a wrong call
says what is wrong instead of a traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from shop_common.migrations import lock_key_of, migrations_of
from shop_devstack.deployment.compose import MIGRATE_MODULE, app_services, load_compose
from shop_devstack.layout import REPO_ROOT

# The packages compose runs a migrate job for (every service with a database).
PACKAGES = ("user_service", "order_service", "payment_service", "catalog_service")
MIGRATED = PACKAGES


@pytest.mark.parametrize("package", MIGRATED)
def test_each_service_has_its_scripts(package: str) -> None:
    folder = migrations_of(package)
    assert (folder / "env.py").is_file() and any((folder / "versions").glob("0001_*.py"))


def test_each_service_has_its_own_lock_key() -> None:
    keys = {lock_key_of(p) for p in MIGRATED}
    assert len(keys) == len(MIGRATED) and all(0 <= k < 2**32 for k in keys)


def test_a_package_without_migrations_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'gateway' has no Alembic migrations folder"):
        migrations_of("gateway")
    with pytest.raises(ValueError, match="'no_such_service' is not an installed package"):
        migrations_of("no_such_service")


def test_the_cli_without_a_package_prints_its_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", MIGRATE_MODULE], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2 and "usage: python -m shop_common.migrations" in result.stderr


def test_every_compose_migrate_job_uses_the_one_entry_point() -> None:
    jobs = [s for s in app_services(load_compose()) if s.is_job and "-m" in s.argv]
    assert sorted(job.package for job in jobs) == sorted(PACKAGES)
    for job in jobs:
        assert job.argv[job.argv.index("-m") + 1] == MIGRATE_MODULE, job.argv
    assert (REPO_ROOT / "docker-compose.yml").read_text().count(MIGRATE_MODULE) == len(PACKAGES)
