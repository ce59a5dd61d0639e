"""Resident memory of this process, for tests that bound what meter holds (Linux ``/proc``).

``rss_kib()`` resets the peak before it reads the current size, so ``peak_kib() - rss_kib()``
taken around a piece of work is the most that work added at any moment. (``ru_maxrss`` would
not do: after ``exec`` it still holds the parent's peak.)
"""

from __future__ import annotations


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_kib() -> int:
    """Current resident size in KiB; also resets the peak (``VmHWM``) to it."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status("VmRSS")


def peak_kib() -> int:
    """Peak resident size in KiB since the last ``rss_kib()``."""
    return _status("VmHWM")
