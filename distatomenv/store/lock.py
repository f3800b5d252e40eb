"""One writer per store: a lock file beside the store.

``STORE.lock`` (for ``run.zarr``: ``run.zarr.lock``) is created atomically
(``O_CREAT | O_EXCL``) by the process that coordinates a compute run (the
serial process, MPI rank 0, the Dask client) before it reads the inputs, and
removed when the run ends, however it ends.  It holds JSON: ``host``, ``pid``,
``started`` (UTC), the process's start time and boot id (Linux), ``command``.
While held, a thread touches it every :data:`HEARTBEAT` seconds.

A second writer finds the file and is refused (:class:`StoreLockedError`)
with a message that names the holder -- unless the lock is **stale**:

* same host: the pid no longer runs, or runs a different process (its start
  time differs; the pid was reused), or the machine has rebooted since;
* another host: the file has not been touched for :data:`STALE_AFTER` seconds.

A stale lock is removed and taken over.  Stores at URLs (``s3://``) are not
locked: object stores have no atomic create here; run one writer there.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

from distatomenv.errors import StoreLockedError, os_error

from .fs import is_url

__all__ = ["StoreLock", "acquire", "release", "lock_path", "pid_alive", "HEARTBEAT", "STALE_AFTER"]

#: Seconds between touches of a held lock.
HEARTBEAT = 30.0
#: A lock of another host untouched for this long is stale.
STALE_AFTER = 600.0

_held: dict[str, "StoreLock"] = {}
_guard = threading.Lock()


def lock_path(store) -> str | None:
    """The lock file of ``store`` (None for a URL)."""
    store = os.fspath(store)
    if is_url(store):
        return None
    return os.path.normpath(os.path.abspath(store)) + ".lock"


def _proc_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (as anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class StoreLock:
    """The lock of one store, held by this process (see the module docstring)."""

    def __init__(self, store, command=None):
        self.store = os.fspath(store)
        self.path = lock_path(store)
        self.command = command
        self.info = None
        self._stop = threading.Event()
        self._thread = None

    # -- taking ---------------------------------------------------------------
    def acquire(self) -> "StoreLock":
        if self.path is None:
            return self
        info = {"host": socket.gethostname(), "pid": os.getpid(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "proc_start": _proc_start(os.getpid()), "boot_id": _boot_id(),
                "command": self.command or " ".join(sys.argv), "token": uuid.uuid4().hex}
        data = json.dumps(info, indent=1).encode()
        try:                     # the store's folder may not exist yet (compute -o new/run.zarr)
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        except OSError as exc:
            raise os_error(exc, self.path, "cannot create the store's folder") from None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read()
                reason = self._stale(holder)
                if reason is None:
                    raise StoreLockedError(self._locked_message(holder)) from None
                self._break(holder)
                continue
            except OSError as exc:
                raise os_error(exc, self.path, "cannot create the store's lock file") from None
            try:
                os.write(fd, data)
            except OSError as exc:
                os.close(fd)
                try:
                    os.remove(self.path)
                except OSError:
                    pass
                raise os_error(exc, self.path, "cannot write the store's lock file") from None
            os.close(fd)
            self.info = info
            self._thread = threading.Thread(target=self._beat, name="distatomenv-lock",
                                            daemon=True)
            self._thread.start()
            return self
        holder = self._read()
        raise StoreLockedError(self._locked_message(holder))

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            info = json.loads(raw or b"{}")
            return info if isinstance(info, dict) else {}
        except FileNotFoundError:
            return {"gone": True}
        except (OSError, ValueError):
            return {}

    def _stale(self, holder: dict) -> str | None:
        """Why the lock described by ``holder`` is stale, or None if it holds."""
        if holder.get("gone"):
            return "removed meanwhile"
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return "removed meanwhile"
        pid = holder.get("pid")
        if holder.get("host") == socket.gethostname() and isinstance(pid, int):
            if holder.get("boot_id") and _boot_id() and holder["boot_id"] != _boot_id():
                return "the machine rebooted since"
            if not pid_alive(pid):
                return f"process {pid} no longer runs"
            start = _proc_start(pid)
            if holder.get("proc_start") and start and start != holder["proc_start"]:
                return f"process {pid} is another process now"
            return None
        if not holder and age > 5.0:        # unreadable or empty for a while: a torn write
            return "the lock file is empty or unreadable"
        if age > STALE_AFTER:
            return f"not touched for {age:.0f} s"
        return None

    def _break(self, holder):
        """Remove a stale lock (only if it is still the one judged stale)."""
        if holder.get("gone"):
            return
        if self._read().get("token") != holder.get("token"):
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def _locked_message(self, h: dict) -> str:
        who = (f"process {h.get('pid', '?')} on host {h.get('host', '?')}, started "
               f"{h.get('started', '?')}") if h else "another process"
        cmd = f" ({h['command']})" if h.get("command") else ""
        return (f"{self.store}: another process is writing this store: {who}{cmd}; lock "
                f"file {self.path}.  Wait for it to finish.  If that process no longer runs "
                f"(for example on another host that died), delete the lock file; a lock of "
                f"another host is also taken over once untouched for {STALE_AFTER:.0f} s")

    def _beat(self):
        while not self._stop.wait(HEARTBEAT):
            try:
                os.utime(self.path)
            except OSError:
                pass

    # -- giving back ----------------------------------------------------------
    def release(self) -> None:
        if self.path is None or self.info is None:
            return
        self._stop.set()
        if self._read().get("token") == self.info["token"]:
            try:
                os.remove(self.path)
            except OSError:
                pass
        self.info = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def acquire(store, command=None) -> StoreLock:
    """Take the lock of ``store`` for this process (kept until :func:`release`
    or the interpreter exits).  Taking a lock this process holds is a no-op."""
    key = lock_path(store) or os.fspath(store)
    with _guard:
        if key in _held:
            return _held[key]
        lock = StoreLock(store, command).acquire()
        _held[key] = lock
        return lock


def release(store) -> None:
    """Give back the lock of ``store`` if this process holds it."""
    key = lock_path(store) or os.fspath(store)
    with _guard:
        lock = _held.pop(key, None)
    if lock is not None:
        lock.release()


@atexit.register
def _release_all():
    for key in list(_held):
        lock = _held.pop(key, None)
        if lock is not None:
            lock.release()
