"""Property 9: pricing input. Malformed, hostile or enormous tables fail with file, entry and field,
and never leave a half-loaded book in use.

Each bad table is tried three ways a user meets it: ``PriceBook.load``,
``meter.Meter(price_tables=...)`` (a clear error at construction, no Meter), and
``meter pricing validate`` in a fresh process (a message and a non-zero exit, no
traceback). A book is built from all its tables or not at all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import meter
from meter.pricing import PriceBook, PricingFileError
from meter.pricing.table import MAX_TABLE_BYTES
from tests.reliability.conftest import soak

HEAD = '[table]\nversion = "t-1"\npublished = 2026-01-01\n\n'


def _row(model: str = "m", **fields: str) -> str:
    values = {"model": f'"{model}"', "deployment_type": '"GlobalStandard"', "effective_from": "2026-01-01",
              "input": '"1.00"', "output": '"2.00"', "source": '"test"', **fields}
    return "[[price]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None) + "\n"


GOOD = HEAD + _row("contoso-llm")
BAD = {
    "not toml": ("[table\nversion = ", "(file)", "not valid TOML"),
    "not utf-8": (b"\xff\xfe[table]".decode("latin-1"), "(file)", "not"),
    "deep nesting": ("a = " + "[" * 50_000 + "]" * 50_000, "(file)", "not valid TOML|nested too deeply"),
    "float price": (HEAD + _row(input="1.5"), "price", "not a decimal string"),
    "negative price": (HEAD + _row(input='"-1"'), "price", "negative"),
    "nan price": (HEAD + _row(input='"NaN"'), "price", "finite"),
    "infinite price": (HEAD + _row(input='"Infinity"'), "price", "finite"),
    "absurd price": (HEAD + _row(input='"1e999999999"'), "price", "more than"),
    "too many decimals": (HEAD + _row(input='"0.0000000000001"'), "price", "decimal places"),
    "not a number": (HEAD + _row(input='"cheap"'), "price", "not a decimal number"),
    "bad date": (HEAD + _row(effective_from='"soon"'), "price", "not a date"),
    "unknown field": (HEAD + _row(colour='"red"'), "price", "colour"),
    "missing source": (HEAD + _row(source=None), "price", "source"),  # type: ignore[arg-type]
    "duplicate": (HEAD + _row() + _row(), "price[1]", "duplicate entry"),
    "overlap": (HEAD + _row() + _row(effective_from="2026-02-01"), "price", "overlaps"),
    "huge string": (HEAD + _row(model="m" * 1_000_000), "price", ""),
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name.replace(' ', '-')}.toml"
    path.write_bytes(text.encode("latin-1") if name == "not utf-8" else text.encode())
    return path


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_table_is_refused_with_file_entry_and_field(name: str, tmp_path: Path) -> None:
    text, entry, problem = BAD[name]
    path = _write(tmp_path, name, text)
    if name == "huge string":  # a long name is no error: it loads, and prices that model
        assert PriceBook.load(path, include_builtin=False) is not None
        return
    with pytest.raises(PricingFileError) as raised:
        PriceBook.load(path, include_builtin=False)
    message = str(raised.value)
    assert str(path) in message and entry in message
    assert any(p in message for p in problem.split("|")), message
    with pytest.raises(PricingFileError):
        meter.Meter(price_tables=path, otel=False, prometheus=False)
    done = subprocess.run([sys.executable, "-m", "meter", "pricing", "validate", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "Traceback" not in done.stdout + done.stderr
    assert str(path) in done.stdout + done.stderr


def test_a_good_table_beside_a_bad_one_builds_no_book(tmp_path: Path) -> None:
    good = _write(tmp_path, "good", GOOD)
    bad = _write(tmp_path, "bad", HEAD + _row(input='"-1"'))
    with pytest.raises(PricingFileError, match=r"bad\.toml"):
        PriceBook.load(good, bad)
    with pytest.raises(PricingFileError):
        meter.Meter(price_tables=[good, bad], otel=False, prometheus=False)
    assert PriceBook.load(good).resolve_model("contoso-llm", None) is not None  # the good one alone is fine


def test_an_enormous_file_is_refused_before_it_is_parsed(tmp_path: Path, figures: dict[str, object]) -> None:
    path = tmp_path / "enormous.toml"
    with path.open("wb") as out:
        out.write(GOOD.encode())
        out.write(b"# padding\n" * (MAX_TABLE_BYTES // 10 + 1))
    t0 = time.perf_counter()
    with pytest.raises(PricingFileError, match="larger than"):
        PriceBook.load(path, include_builtin=False)
    figures["pricing: file size limit"] = f"{MAX_TABLE_BYTES >> 20} MiB; refused in {time.perf_counter() - t0:.3f} s"


def test_a_large_table_loads_in_bounded_time(tmp_path: Path, figures: dict[str, object]) -> None:
    rows = soak(20_000, 100_000)
    path = tmp_path / "large.toml"
    path.write_text(HEAD + "".join(_row(f"model-{i}") for i in range(rows)))
    t0 = time.perf_counter()
    book = PriceBook.load(path)
    seconds = time.perf_counter() - t0
    assert book.resolve_model(f"model-{rows - 1}", None) is not None
    cost = book.cost_of(meter.Usage(input_tokens=1_000_000, total_tokens=1_000_000), model=f"model-{rows - 1}")
    assert str(cost.total) == "1.00"
    figures["pricing: large table"] = f"{rows} rows ({path.stat().st_size >> 10} KiB) loaded in {seconds:.2f} s"


def test_a_hostile_deployment_map_fails_at_construction(tmp_path: Path) -> None:
    deep = '{"d": ' + "[" * 50_000 + "]" * 50_000 + "}"
    for source in (deep, '{"d": {"model": 5}}', '{"d": {"model": "m", "deployment_type": "Nope"}}'):
        with pytest.raises(PricingFileError):
            meter.Meter(deployments=source, otel=False, prometheus=False)
