"""Ingest does what the README says: its bulk-load block runs as printed; explicit mappings keep
header detection; the separator is detected or given; a file too small to train on says so and
points to the starter model."""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batch.cli import main as batch_main
from batch.ingest import detect_delimiter
from identity_graph.store import open_store
from identity_graph.synthetic import generate

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["record_id", "mail", "mobile", "first_name", "last_name", "dob", "ssn", "postcode"]


def _crm_rows(customers: int, seed: int = 7) -> list[dict[str, str]]:
    """A CRM extract in the README's column names; some people appear twice (with their SSN)."""
    rng = random.Random(seed)
    rows = []
    for r in generate(customers, seed=seed).source_rows:
        y, m, d = (r.get("date_of_birth") or "--").split("-")
        row = {"record_id": r["record_id"], "mail": r["email"] or "", "mobile": r["phone"] or "",
               "first_name": r.get("first_name") or "", "last_name": r.get("last_name") or "",
               "dob": f"{d}/{m}/{y}" if y else "", "postcode": r.get("postcode") or "",
               "ssn": f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
               if rng.random() < 0.7 else ""}
        rows.append(row)
        if rng.random() < 0.3:
            rows.append({**row, "record_id": row["record_id"] + "-2", "mobile": ""})
    return rows


def _full(rows: list[dict[str, str]]) -> dict[str, str]:
    """The first row with every column filled."""
    return next(r for r in rows if all(r.values()))


def _write(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Nightly re-linking and bulk loads")
    return re.findall(r"```bash\n(.*?)```", text[start:], flags=re.S)[0]


@pytest.mark.slow
def test_readme_bulk_load_block_runs_as_printed(tmp_path: Path) -> None:
    block = _readme_block()
    assert "identity-batch ingest crm.csv" in block
    _write(tmp_path / "crm.csv", _crm_rows(400))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "DRY RUN" in run.stdout and (tmp_path / "analytics" / "links.parquet").exists()
    with open_store(str(tmp_path / "identity.db")) as store:
        row = _full(_crm_rows(400))
        rec = "source_record:crm/" + row["record_id"]
        attributes = {o.attribute for o in store.observations([rec])}
        # named by flags, and detected from the header beside them
        assert {"date_of_birth", "first_name", "last_name"} <= attributes, attributes
        kinds = {lk.kind.label for lk in store.links([rec])}
        assert "observed" in kinds


def test_explicit_flags_keep_header_detection_unless_turned_off(tmp_path: Path, capsys) -> None:
    src = _write(tmp_path / "crm.csv", _crm_rows(20))
    db = str(tmp_path / "g.db")
    first = _full(_crm_rows(20))
    rec = f"source_record:crm/{first['record_id']}"
    assert batch_main(["ingest", str(src), "--db", db, "--source", "crm", "--quiet",
                       "--identifier", "mail=email", "--attribute", "ssn=national_id:code"]) == 0
    with open_store(db) as store:
        got = {o.attribute for o in store.observations([rec])}
    assert {"first_name", "last_name", "postcode"} <= got and "national_id" in got
    db2 = str(tmp_path / "g2.db")
    assert batch_main(["ingest", str(src), "--db", db2, "--source", "crm", "--quiet", "--no-detect-columns",
                       "--identifier", "mail=email", "--attribute", "ssn=national_id:code"]) == 0
    with open_store(db2) as store:
        assert {o.attribute for o in store.observations([rec])} <= {"national_id"}
    assert '"unmapped_columns"' in capsys.readouterr().out


@pytest.mark.parametrize(("delimiter", "flag"), [(";", None), ("\t", None), ("|", None), (";", ";"),
                                                 ("\t", "tab")])
def test_separator_detected_or_given(tmp_path: Path, delimiter: str, flag: str | None) -> None:
    rows = _crm_rows(15)
    src = _write(tmp_path / "crm.csv", rows, delimiter)
    assert detect_delimiter(src) == delimiter
    db = str(tmp_path / "g.db")
    extra = ["--delimiter", flag] if flag else []
    assert batch_main(["ingest", str(src), "--db", db, "--source", "crm", "--quiet",
                       "--identifier", "mail=email", *extra]) == 0
    full = _full(rows)
    with open_store(db) as store:
        obs = {o.attribute: o.value for o in store.observations([f"source_record:crm/{full['record_id']}"])}
    assert obs.get("first_name") == full["first_name"].lower()


def test_a_wrong_separator_is_named_in_the_error(tmp_path: Path, capsys) -> None:
    src = _write(tmp_path / "crm.csv", _crm_rows(5), ";")
    assert batch_main(["ingest", str(src), "--db", str(tmp_path / "g.db"), "--source", "crm", "--quiet",
                       "--delimiter", ",", "--identifier", "mail=email"]) == 2
    err = capsys.readouterr().err
    assert "columns not in the file" in err and "--delimiter" in err
    assert batch_main(["ingest", str(src), "--db", str(tmp_path / "g.db"), "--quiet",
                       "--identifier", "mail=email"]) == 2
    assert "--source NAME" in capsys.readouterr().err


def test_a_file_too_small_to_train_on_points_to_the_starter_model(tmp_path: Path, capsys) -> None:
    tiny = [{"record_id": "1", "mail": "ann.lee@example.com", "mobile": "(212) 555-0101",
             "first_name": "Ann", "last_name": "Lee", "dob": "03/02/1980", "ssn": "123-45-6789",
             "postcode": "10001"},
            {"record_id": "2", "mail": "bob@example.com", "mobile": "(212) 555-0102",
             "first_name": "Bob", "last_name": "Ray", "dob": "04/05/1975", "ssn": "987-65-4321",
             "postcode": "10002"},
            {"record_id": "3", "mail": "ann.lee@example.com", "mobile": "", "first_name": "Ann",
             "last_name": "Lee", "dob": "03/02/1980", "ssn": "", "postcode": ""}]
    src = _write(tmp_path / "crm.csv", tiny)
    db = str(tmp_path / "g.db")
    assert batch_main(["ingest", str(src), "--db", db, "--source", "crm", "--quiet",
                       "--identifier", "mail=email", "--attribute", "dob=date_of_birth",
                       "--date-format", "%d/%m/%Y", "--attribute", "ssn=national_id:code"]) == 0
    capsys.readouterr()
    reports = str(tmp_path / "reports")
    assert batch_main(["relink", "--db", db, "--quiet", "--report-dir", reports,
                       "--models-dir", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err
    assert "cannot train a model on" in err and "--model starter" in err
    assert "math domain error" not in err and "Traceback" not in err
    assert batch_main(["relink", "--db", db, "--quiet", "--report-dir", reports, "--model", "starter"]) == 0
    assert "starter" in capsys.readouterr().out
