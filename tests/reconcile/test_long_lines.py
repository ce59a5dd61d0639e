"""An export with one enormous line is refused at that line, in memory bounded by the line limit, not the file.

The csv module's ``field_size_limit`` refuses a long field only after the whole physical line
has been read and decoded: a 512 MB line cost 1 GB of memory and was reported at ``line 0``.
Here a line of 128 MiB (gzip: a small file on disk, written streaming) and of 64 MiB (plain)
is read by a real ``python -m meter reconcile`` process whose peak resident memory is taken
from the kernel (``os.wait4``: that child's own ``ru_maxrss``), against the same command on a
small bad file. The error is one line naming the file and the physical line (an earlier
record with a quoted newline counts as two lines, as an editor shows them).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from meter.reconcile.exports import ExportError, read_file

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20
HEADER = b"Date,MeterName,ResourceId,Quantity,MeterCategory\r\n"
GOOD = b"11/01/2026,gpt-4o-mini-0718-Inp-glbl Tokens,/s/x/accounts/a,10,Cognitive Services\r\n"
QUOTED = b'11/01/2026,"gpt-4o-mini-0718-Inp-glbl\r\nTokens",/s/x/accounts/a,10,Cognitive Services\r\n'
"""A record on two physical lines (a quoted newline): the next line is physical line 5, record 4."""


def _write_export(write: Callable[[bytes], object], long_field: int) -> None:
    """Header, a record, a record spanning two lines, then (physical line 5) a line with a huge field."""
    write(HEADER + GOOD + QUOTED + b'11/01/2026,"')
    chunk = b"x" * MIB
    for _ in range(long_field // MIB):
        write(chunk)
    write(b"x" * (long_field % MIB))
    write(b'",/s/x/accounts/a,10,Cognitive Services\r\n' + GOOD)


def _gzip_export(path: Path, long_field: int) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as out:
        _write_export(out.write, long_field)
    return path


def _plain_export(path: Path, long_field: int) -> Path:
    with path.open("wb") as out:
        _write_export(out.write, long_field)
    return path


def _reconcile_peak(tmp_path: Path, export: Path) -> tuple[int, str, int]:
    """Exit status, stderr and peak RSS (bytes) of ``meter reconcile`` on ``export``, that process alone."""
    err = tmp_path / f"{export.name}.stderr"
    with err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "meter", "reconcile", "--ledger",
                                 str(tmp_path / "absent.sqlite"), str(export)],
                                stdout=subprocess.DEVNULL, stderr=stderr, cwd=REPO)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err.read_text(), usage.ru_maxrss * 1024  # Linux: kilobytes


@pytest.mark.parametrize(("build", "suffix", "size"), [(_gzip_export, ".csv.gz", 128 * MIB),
                                                      (_plain_export, ".csv", 64 * MIB)], ids=["gzip", "plain"])
def test_a_huge_line_is_refused_at_its_line_in_bounded_memory(tmp_path: Path, build: Callable[[Path, int], Path],
                                                              suffix: str, size: int) -> None:
    small = build(tmp_path / f"small{suffix}", 200_000)  # over csv's field limit too: the same path, small
    huge = build(tmp_path / f"huge{suffix}", size)
    code, said, base = _reconcile_peak(tmp_path, small)
    assert code == 1 and said.startswith(f"error: {small}, line 5"), said
    code, said, peak = _reconcile_peak(tmp_path, huge)
    assert code == 1 and said.startswith(f"error: {huge}, line 5: "), said
    assert said.count("\n") == 1 and "Traceback" not in said
    assert peak - base < 16 * MIB, f"peak RSS {peak / MIB:.0f} MiB against {base / MIB:.0f} MiB for a small file"


def test_a_record_of_many_short_lines_is_bounded_too(tmp_path: Path) -> None:
    """A quoted field may hold newlines: the record, not only the line, is bounded, and named by its first line."""
    path = tmp_path / "many.csv"
    with path.open("wb") as out:
        out.write(HEADER + GOOD + QUOTED + b'11/01/2026,"' + (b"y" * 1000 + b"\n") * 3000
                  + b'",/s/x/accounts/a,10,Cognitive Services\r\n')
    with pytest.raises(ExportError) as caught:
        read_file(path)
    assert caught.value.line == 5, str(caught.value)
    assert str(caught.value).startswith(f"{path}, line 5: "), str(caught.value)


def test_errors_after_a_multi_line_record_name_the_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "after.csv"
    path.write_bytes(HEADER + GOOD + QUOTED + GOOD.replace(b",10,", b",1O,"))
    with pytest.raises(ExportError) as caught:
        read_file(path)
    assert str(caught.value) == f"{path}, line 5, column Quantity: not a number: '1O'"
