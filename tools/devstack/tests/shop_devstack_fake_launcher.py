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


def fake_processes(config: StackConfig, keys: DevKeys) -> list[ProcessSpec]:
    ports = [config.ports.user[0], config.ports.user[1], config.ports.gateway]
    return [
        ProcessSpec(
            name, "fake", port, "http", "", {"HTTP_PORT": str(port)}, (sys.executable, FAKE)
        )
        for name, port in zip(("svc-1", "svc-2", "front"), ports, strict=True)
    ]


launcher.build_processes = fake_processes
launcher.installed = lambda process: True
sys.exit(cli.main())
