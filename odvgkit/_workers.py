"""Worker processes that die with their parent.

A ``kill -9`` of an odvgkit command used to leave its decode/format workers running (adopted by
init, ~125 MB each, for minutes): a killed parent runs no cleanup, so the workers must notice on
their own. On Linux each worker asks the kernel for ``SIGKILL`` when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls the parent's pid. Both are set up by
:func:`die_with_parent`, passed as the pool's ``initializer``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker as soon as process ``parent`` is gone.

    The death signal fires when the *thread* that forked the worker exits; odvgkit's pools are
    created and fed by the thread that consumes them, which lives as long as the pool.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()
