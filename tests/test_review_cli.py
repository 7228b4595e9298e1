"""`identity-batch review` on either backend: list the queue with its waterfall, accept and reject
by pair or id, list and withdraw constraints, in text and --json; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.cli import main
from identity_graph.matching.model import STARTER_MODEL_PATH
from tests.test_people_decisions import BAND, R1, R2, R3, _owner, _pat


def _store_flags(store, request: pytest.FixtureRequest) -> list[str]:
    if store.name == "sqlite":
        return ["--db", store.path]
    server = request.getfixturevalue("neo4j_server")
    return ["--neo4j-uri", server.uri, "--neo4j-user", server.user, "--neo4j-password", server.password]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_review_from_the_command_line(store, request, capsys, tmp_path: Path) -> None:
    _pat(store, BAND)
    flags = _store_flags(store, request)
    config = tmp_path / "band.toml"
    config.write_text("[graph]\nlink_threshold = 0.9\nreview_threshold = 0.5\n")
    flags += ["--config", str(config), "--quiet"]
    code, out, _ = _run(capsys, "review", "list", "--order", "score", "--model", str(STARTER_MODEL_PATH),
                        *flags)
    assert code == 0 and out.startswith("2 possible links waiting") and "prior" in out
    code, out, _ = _run(capsys, "review", "list", R3, "--json", *flags)
    listed = json.loads(out)
    assert listed["total"] == 2 and {(i["a"], i["b"]) for i in listed["items"]} == {(R1, R3), (R2, R3)}

    code, out, _ = _run(capsys, "review", "reject", R2, R3, "--actor", "analyst:lee", "--reason",
                        "different birth dates", *flags)
    assert code == 0 and "cannot_link" in out and "analyst:lee" in out
    r13 = next(i["link_id"] for i in listed["items"] if i["a"] == R1)
    code, _, err = _run(capsys, "review", "accept", r13, "--actor", "analyst:lee", *flags)
    assert code == 1 and "withdraw it first" in err
    code, out, _ = _run(capsys, "review", "withdraw", R3, R2, "--actor", "analyst:lee", "--reason",
                        "misread", "--json", *flags)
    [withdrawn] = json.loads(out)["withdrawn"]
    assert withdrawn["active"] is False and withdrawn["withdrawn_by"] == "analyst:lee"
    code, out, _ = _run(capsys, "review", "accept", r13, "--actor", "analyst:lee", "--json", *flags)
    assert code == 0 and json.loads(out)["constraint"]["kind"] == "must_link"
    assert len(set(_owner(store, R1, R2, R3))) == 1

    code, out, _ = _run(capsys, "review", "constraints", "--all", "--json", *flags)
    kinds = sorted((c["kind"], c["active"]) for c in json.loads(out)["constraints"])
    assert kinds == [("cannot_link", False), ("must_link", True)]
    code, out, _ = _run(capsys, "review", "constraints", *flags)
    assert code == 0 and out.count("\n") == 1 and "must_link" in out

    code, _, err = _run(capsys, "review", "accept", "a:b", "c:d", "e:f", "--actor", "x", *flags)
    assert code == 2 and "link" in err
    code, _, err = _run(capsys, "review", "list", "--limit", "0", *flags)
    assert code == 2 and "page_size" in err
