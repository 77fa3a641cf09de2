"""Serve the reference target here, or start it in a child process on a free port.

The child is one of convsim's own (`simulator.process`: isolated, importing convsim's
packages). It runs in its own session (process group): the terminal's Ctrl-C goes to
convsim, which stops the target when its last turn is in; and it dies with convsim.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import subprocess
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from aiohttp import web

from simulator.process import child_command, die_with_parent, drain_pipe
from simulator.target.server import ReferenceTarget, TargetConfig

READY_PREFIX = "convsim target listening on "


def install_uvloop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - Windows
        pass


async def serve(config: TargetConfig, host: str = "127.0.0.1", port: int = 0, ready: bool = True) -> None:
    runner = web.AppRunner(ReferenceTarget(config).app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1]
    if ready:
        print(f"{READY_PREFIX}http://{host}:{bound}/v1", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serving(config: TargetConfig, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve the target in the running loop on a free port; yields its base URL."""
    runner = web.AppRunner(ReferenceTarget(config).app(), access_log=None, handle_signals=False,
                           shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield f"http://{host}:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


def config_args(config: TargetConfig) -> list[str]:
    args = []
    for field in dataclasses.fields(config):
        args += [f"--{field.name.replace('_', '-')}", str(getattr(config, field.name))]
    return args


class TargetProcess:
    """The reference target in its own process (its CPU is not the load generator's)."""

    def __init__(self, config: TargetConfig, host: str = "127.0.0.1", processes: int = 1) -> None:
        self.config = config
        self.host = host
        self.processes = processes  # serving processes sharing its port (`convsim target --processes`)
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None
        self.log_tail: collections.deque[str] = collections.deque()  # the target's last stderr lines

    def start(self, timeout_s: float = 20.0) -> "TargetProcess":
        cmd = child_command("simulator.target.command", "main", "--host", self.host, "--port", "0",
                            "--processes", str(self.processes), *config_args(self.config))
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        assert self._proc.stdout is not None
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                self.base_url = line[len(READY_PREFIX) :].strip()
                self.log_tail = drain_pipe(self._proc.stderr)  # a full pipe would stall the target
                drain_pipe(self._proc.stdout, keep=1)
                return self
            if not line and self._proc.poll() is not None:
                err = self._proc.stderr.read() if self._proc.stderr else ""
                raise RuntimeError(f"reference target exited at start: {err.strip()[-300:]}")
        self.stop()
        raise RuntimeError(f"reference target did not start within {timeout_s:.0f} s")

    def discard(self) -> None:
        """Leave at once (a second Ctrl-C): kill the target without waiting for it to finish."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream:
                stream.close()
        self._proc = None

    def __enter__(self) -> "TargetProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
