"""The real launcher (`shop_devstack up`), with stand-in services instead of the real ones.

Used by test_launcher_process.py to prove the launcher's whole life (start, ready, control,
crash restart, Ctrl-C, `down`) without the services. The file name contains `shop_devstack`
so that `down` and the state file recognise it as a launcher.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shop_devstack import cli, launcher
from shop_devstack.layout import DevKeys, ProcessSpec, StackConfig

FAKE = str(Path(__file__).with_name("fake_service.py"))


# The stand-in migration: creates a table in the service's database (DATABASE_URL).
MIGRATE = (
    "import asyncio, os, asyncpg\n"
    "url = os.environ['DATABASE_URL'].replace('postgresql+asyncpg', 'postgresql')\n"
    "async def main():\n"
    "    conn = await asyncpg.connect(url)\n"
    "    await conn.execute('CREATE TABLE IF NOT EXISTS migrated (n int)')\n"
    "    await conn.close()\n"
    "asyncio.run(main())\n"
)


def fake_processes(config: StackConfig, keys: DevKeys) -> list[ProcessSpec]:
    ports = [config.ports.user[0], config.ports.user[1], config.ports.gateway]
    return [
        ProcessSpec(
            name,
            "fake",
            port,
            "http",
            "users" if name.startswith("svc") else "",
            {"HTTP_PORT": str(port), "DATABASE_URL": config.database_url("users")},
            (sys.executable, FAKE),
            (sys.executable, "-c", MIGRATE),
        )
        for name, port in zip(("svc-1", "svc-2", "front"), ports, strict=True)
    ]


launcher.build_processes = fake_processes
launcher.installed = lambda process: True
sys.exit(cli.main())
