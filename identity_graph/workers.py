"""`identity-server --workers N`: N server processes on one port, for the cores one Python
process cannot use (grpc's multiprocessing pattern: every worker binds the port with
`SO_REUSEPORT` and the kernel spreads connections over them).

The parent first binds the port *without* `SO_REUSEPORT`, so a port that anything else holds
(another server, `--workers` or not) fails at once; then it keeps a bound, non-listening socket
with `SO_REUSEPORT` for as long as the workers run, so the port stays this server's: only
sockets that set the option can join it, and a later unrelated `identity-server` (which never
sets it) fails to bind. The workers are separate processes writing one database, so everything
the README says about replicas applies to them (shared: the database; per worker: the rate
limits, the WatchEvents bell).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

log = logging.getLogger("identity_server")

RESTART_PAUSE_S = 1.0
"""A worker that died is started again after this pause (no tight crash loop)."""


class PortTaken(RuntimeError):
    """The address is in use or not local."""


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


@contextlib.contextmanager
def reserve_port(address: str) -> Iterator[int]:
    """Holds `address`'s port for this process's workers (see the module docstring); yields the
    port (a free one for port 0).

    Raises:
        PortTaken: the port is in use, or the address cannot be bound here.
    """
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.bind((host, port))  # no SO_REUSEPORT: fails whenever anything holds the port
        port = probe.getsockname()[1]
    except OSError as e:
        raise PortTaken(f"could not bind {address}: {e.strerror}") from e
    finally:
        probe.close()
    keeper = socket.socket(family, socket.SOCK_STREAM)
    try:
        keeper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            keeper.bind((host, port))
        except OSError as e:  # taken in the moment between the probe and now
            raise PortTaken(f"could not bind {address}: {e.strerror}") from e
        yield port
    finally:
        keeper.close()


def worker_argv(argv: Sequence[str], address: str) -> list[str]:
    """The command line of one worker: the parent's, with the reserved address and one worker."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--workers", "--address"):
            skip = True
            continue
        if arg.startswith(("--workers=", "--address=")):
            continue
        out.append(arg)
    return [sys.executable, "-m", "server", *out, "--address", address, "--workers", "1",
            "--reuse-port"]


def run(argv: Sequence[str], address: str, workers: int) -> int:
    """Reserves the port, runs `workers` worker processes on it until SIGTERM or SIGINT (then
    passes the signal on and waits for them to drain), restarting any that dies meanwhile.

    Returns:
        The exit status: 0 after a clean stop, 2 when the port is taken.
    """
    try:
        reserved = reserve_port(address)
        port = reserved.__enter__()
    except PortTaken as e:
        print(f"identity-server: error: {e}", file=sys.stderr)
        return 2
    host, _ = split_address(address)
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = worker_argv(argv, bound)
    stopping = False
    status = 0

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        signal.signal(signum, signal.SIG_IGN)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    procs: list[subprocess.Popen[bytes]] = []
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        procs.extend(subprocess.Popen(cmd) for _ in range(workers))
        log.info("workers", extra={"fields": {"workers": workers, "port": port,
                                              "pids": [p.pid for p in procs]}})
        while True:
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is None or stopping:
                    continue
                if code == 2:  # a usage or configuration error: every worker would hit it
                    status = 2
                    stop(signal.SIGTERM, None)
                    break
                log.error("worker exited; starting another", extra={"fields": {
                    "pid": proc.pid, "code": code}})
                time.sleep(RESTART_PAUSE_S)
                if not stopping:
                    procs[i] = subprocess.Popen(cmd)
            if stopping and all(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        return status
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reserved.__exit__(None, None, None)
