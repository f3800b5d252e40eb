"""Ctrl-C during long numba loops.

A numba kernel never returns to the interpreter, so Python's SIGINT handler
(which raises KeyboardInterrupt) runs only when the kernel ends.  While
:func:`watching` is active, a watcher thread sees SIGINT at once (through
:func:`signal.set_wakeup_fd`) and sets :data:`STOP`; the long kernels, which
release the GIL, poll ``STOP[0]`` and return early, and Python's own handler
then raises KeyboardInterrupt as usual.  The command line watches for the
whole of a command; in a notebook nothing changes (the kernels only read a
flag that stays 0).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

import numpy as np

__all__ = ["STOP", "watching", "check"]

#: int64 (1,): 1 once SIGINT arrived while :func:`watching`; read by the kernels.
STOP = np.zeros(1, dtype=np.int64)


def check() -> None:
    """Raise KeyboardInterrupt if a kernel stopped early because of SIGINT."""
    if STOP[0]:
        raise KeyboardInterrupt


@contextlib.contextmanager
def watching():
    """While the block runs, SIGINT sets ``STOP[0] = 1`` immediately (main
    thread only; elsewhere, or where the wakeup fd is taken, it does nothing)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError):        # pragma: no cover - not the main thread
        os.close(r)
        os.close(w)
        yield
        return

    def watch():
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:                 # the write end closed: the block ended
                return
            if signal.SIGINT in data:
                STOP[0] = 1

    thread = threading.Thread(target=watch, name="distatomenv-sigint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(old)
        os.close(w)
        thread.join(1.0)
        os.close(r)
        STOP[0] = 0
