"""A real PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` on a free loopback port in a temporary folder.

Debian's ``postgresql`` package (``.ci/run`` installs it). ``initdb`` and ``postgres`` refuse to
run as root, so as root they run as the package's ``postgres`` user on a folder it owns. The
cluster trusts loopback connections for user ``meter``; it is stopped (fast) at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.prometheus import free_port


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (.ci/run does)")
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="meter-pg-"))
        self.port = free_port()
        self.url = f"postgresql://meter@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def __enter__(self) -> Self:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run(_bin("initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "meter")
        self._start()
        return self

    def _start(self) -> None:
        # The server's output goes to the log file: a server holding our pipe would keep run() waiting.
        self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "-l", str(self.dir / "log"),
                  "-w", "start")

    def restart(self) -> None:
        """Stop (fast: every connection is cut) and start again on the same port."""
        self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        self._start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
