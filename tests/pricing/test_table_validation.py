"""Every validation error names the file, the entry, the field and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pricing_helpers import write_table

from meter.pricing import PriceBook, PricingFileError
from meter.pricing.table import load_table

GOOD = """
[[price]]
model = "my-model"
deployment_type = "GlobalStandard"
effective_from = 2026-01-01
input = "1"
output = "2"
source = "contract 42"
"""


def problem_of(path: Path, *, layered: bool = False) -> str:
    with pytest.raises(PricingFileError) as info:
        if layered:
            PriceBook.load(path)
        else:
            load_table(path)
    return str(info.value)


def test_a_good_file_loads(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path, GOOD))
    assert table.version == "user-1"
    assert [r.id for r in table.rows] == [
        "my-model:GlobalStandard@2026-01-01/input",
        "my-model:GlobalStandard@2026-01-01/output",
    ]


PRICE_CASES = [
    # (description, replace old -> new in GOOD, entry text, field, problem text)
    (
        "non-decimal",
        ('input = "1"', 'input = "abc"'),
        "price[0] (my-model@2026-01-01)",
        "input",
        "'abc' is not a decimal number",
    ),
    (
        "float",
        ('input = "1"', "input = 2.5"),
        "price[0] (my-model@2026-01-01)",
        "input",
        "2.5 is not a decimal string; write it quoted",
    ),
    ("integer", ('input = "1"', "input = 2"), "price[0] (my-model@2026-01-01)", "input", "2 is not a decimal string"),
    (
        "negative",
        ('input = "1"', 'input = "-0.5"'),
        "price[0] (my-model@2026-01-01)",
        "input",
        "'-0.5' is negative; prices must be >= 0",
    ),
    ("nan", ('input = "1"', 'input = "NaN"'), "price[0] (my-model@2026-01-01)", "input", "is not a finite decimal"),
    (
        "unknown deployment type",
        ('"GlobalStandard"', '"Turbo"'),
        "price[0] (my-model@2026-01-01)",
        "deployment_type",
        "unknown deployment type 'Turbo'",
    ),
    (
        "provisioned",
        ('"GlobalStandard"', '"ProvisionedManaged"'),
        "price[0] (my-model@2026-01-01)",
        "deployment_type",
        "billed per PTU-hour",
    ),
    (
        "missing source",
        ('source = "contract 42"', ""),
        "price[0] (my-model@2026-01-01)",
        "source",
        "missing (required)",
    ),
    (
        "empty source",
        ('source = "contract 42"', 'source = " "'),
        "price[0] (my-model@2026-01-01)",
        "source",
        "must be a non-empty string",
    ),
    ("missing model", ('model = "my-model"', ""), "price[0]", "model", "missing (required)"),
    ("missing effective_from", ("effective_from = 2026-01-01", ""), "price[0]", "effective_from", "missing (required)"),
    (
        "bad date",
        ("effective_from = 2026-01-01", 'effective_from = "June 1st"'),
        "price[0]",
        "effective_from",
        "'June 1st' is not a date",
    ),
    (
        "datetime",
        ("effective_from = 2026-01-01", "effective_from = 2026-01-01T10:00:00Z"),
        "price[0]",
        "effective_from",
        "is a date-time; write a plain date",
    ),
    (
        "until before from",
        ("effective_from = 2026-01-01", "effective_from = 2026-01-01\neffective_until = 2025-01-01"),
        "price[0] (my-model@2026-01-01)",
        "effective_until",
        "2025-01-01 is not after effective_from 2026-01-01",
    ),
    (
        "unknown field",
        ('output = "2"', 'output = "2"\noutptu = "3"'),
        "price[0] (my-model@2026-01-01)",
        "outptu",
        "unknown field",
    ),
    (
        "no price",
        ('input = "1"\noutput = "2"', ""),
        "price[0] (my-model@2026-01-01)",
        "input",
        "no price given; set at least one of",
    ),
    (
        "regional without region",
        ('"GlobalStandard"', '"Standard"'),
        "price[0] (my-model@2026-01-01)",
        "region",
        "missing: Standard (regional) prices differ per region",
    ),
    (
        "bad tier",
        ('output = "2"', 'output = "2"\nabove_input_tokens = -5'),
        "price[0] (my-model@2026-01-01)",
        "above_input_tokens",
        "-5 must be a whole number of tokens >= 0",
    ),
]


@pytest.mark.parametrize(
    ("old_new", "entry", "field", "problem"), [c[1:] for c in PRICE_CASES], ids=[c[0] for c in PRICE_CASES]
)
def test_price_entry_errors(tmp_path: Path, old_new: tuple[str, str], entry: str, field: str, problem: str) -> None:
    old, new = old_new
    assert old in GOOD
    path = write_table(tmp_path, GOOD.replace(old, new))
    message = problem_of(path)
    assert str(path) in message
    assert f"{entry}: field {field!r}: " in message
    assert problem in message


def test_overlapping_date_ranges(tmp_path: Path) -> None:
    second = GOOD.replace("2026-01-01", "2026-03-01")
    path = write_table(tmp_path, GOOD + second)
    message = problem_of(path)
    assert (
        f"{path}: my-model:GlobalStandard@2026-03-01: field 'effective_from': input price from 2026-03-01 overlaps "
        "entry 'my-model:GlobalStandard@2026-01-01' (2026-01-01 to open-ended); end the older entry with "
        "effective_until"
    ) in message
    ended = GOOD.replace("effective_from = 2026-01-01", "effective_from = 2026-01-01\neffective_until = 2026-03-01")
    load_table(write_table(tmp_path, ended + second))  # adjacent ranges are fine


def test_overlap_within_a_region_group(tmp_path: Path) -> None:
    body = """
[region_groups]
base = ["eastus", "westus"]

[[price]]
model = "m"
deployment_type = "Standard"
region = "base"
effective_from = 2026-01-01
input = "1"
source = "s"

[[price]]
model = "m"
deployment_type = "Standard"
region = "westus"
effective_from = 2026-02-01
input = "2"
source = "s"
"""
    message = problem_of(write_table(tmp_path, body))
    assert "m:Standard:westus@2026-02-01: field 'effective_from'" in message
    assert "in region westus" in message


def test_duplicate_entry_id(tmp_path: Path) -> None:
    body = GOOD.replace('model = "my-model"', 'id = "x"\nmodel = "my-model"')
    other = body.replace("2026-01-01", "2027-01-01")
    message = problem_of(write_table(tmp_path, body + other))
    assert "price[1] (my-model@2027-01-01): field 'id': duplicate entry id 'x'" in message


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[table\nversion = 1", encoding="utf-8")
    message = problem_of(path)
    assert message.startswith(f"{path}: (file): field '-': not valid TOML:")


def test_missing_file(tmp_path: Path) -> None:
    message = problem_of(tmp_path / "nope.toml")
    assert "nope.toml: (file): field '-': cannot read file" in message


def test_header_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[table]\ncurrency = "EUR"\nextra = 1\n\n[prices]\n', encoding="utf-8")
    message = problem_of(path)
    assert f"{path}: [table]: field 'version': missing or empty: every table needs a version id" in message
    assert f"{path}: [table]: field 'published': missing (required)" in message
    assert f"{path}: [table]: field 'currency': 'EUR' is not supported: Azure prices are set in USD" in message
    assert f"{path}: [table]: field 'extra': unknown field" in message
    assert f"{path}: (file): field 'prices': unknown section" in message
    assert message.startswith("5 problems:")


def test_missing_table_header(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert "[table]: field 'table': missing [table] section" in problem_of(path)


def test_sources_and_region_groups_errors(tmp_path: Path) -> None:
    body = '[sources]\nM = ""\n\n[region_groups]\nbase = []\n' + GOOD
    message = problem_of(write_table(tmp_path, body))
    assert "[sources]: field 'M': must be a non-empty string" in message
    assert "[region_groups]: field 'base': must be a non-empty list of region names" in message


def test_model_and_alias_errors(tmp_path: Path) -> None:
    body = (
        GOOD
        + """
[[model]]
same_price_snapshots = "yes"

[[alias]]
name = "x"
effective_from = 2026-02-01
effective_until = 2026-01-01
"""
    )
    message = problem_of(write_table(tmp_path, body))
    assert "model[0]: field 'id': missing (required)" in message
    assert "model[0]: field 'same_price_snapshots': must be true or false" in message
    assert "alias[0]: field 'model': missing (required)" in message
    assert "alias[0]: field 'effective_until': 2026-01-01 is not after effective_from 2026-02-01" in message


def test_correction_errors(tmp_path: Path) -> None:
    body = (
        GOOD
        + """
[[correction]]
corrects = "my-model:GlobalStandard@2026-01-01"
cached_input = "0.5"
"""
    )
    message = problem_of(write_table(tmp_path, body))
    entry = "correction[0] (my-model:GlobalStandard@2026-01-01)"
    assert f"{entry}: field 'recorded_at': missing (required)" in message
    assert f"{entry}: field 'source': missing (required)" in message
    assert (
        f"{entry}: field 'cached_input': entry 'my-model:GlobalStandard@2026-01-01' has no cached_input price "
        "to correct"
    ) in message


def test_correction_of_an_unknown_entry(tmp_path: Path) -> None:
    body = (
        GOOD
        + """
[[correction]]
corrects = "nope:GlobalStandard@2026-01-01"
recorded_at = 2026-02-01
input = "0.5"
source = "invoice"
"""
    )
    path = write_table(tmp_path, body)
    message = problem_of(path, layered=True)
    assert (
        f"{path}: correction (nope:GlobalStandard@2026-01-01): field 'corrects': no price entry "
        "'nope:GlobalStandard@2026-01-01' with a input price in this or an earlier table"
    ) in message


def test_alias_to_a_model_without_rows(tmp_path: Path) -> None:
    path = write_table(tmp_path, GOOD + '\n[[alias]]\nname = "x"\nmodel = "ghost"\n')
    message = problem_of(path, layered=True)
    assert f"{path}: alias (x): field 'model': 'ghost' has no price rows in this or an earlier table" in message


def test_builtin_table_is_valid() -> None:
    book = PriceBook.load()
    assert book.version == "2026-12-01.1+2026-12-07.1"
    assert all(row.source for row in book.rows())
