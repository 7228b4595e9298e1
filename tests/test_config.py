"""The one settings file: the committed example loads to the defaults and names every key; bad
values are refused with the key named, by the loader and by `identity-server --config`."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from identity_graph.config import ConfigError, GraphConfig, parse_duration
from identity_graph.model import LinkKind
from session.policy import SessionPolicy, Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_the_example_file_loads_to_the_defaults_and_lists_every_key() -> None:
    assert Settings.from_file(EXAMPLE) == Settings()
    text = EXAMPLE.read_text()
    for section, cls in (("graph", GraphConfig), ("session", SessionPolicy)):
        for f in fields(cls):
            assert re.search(rf"^\[?{section}\.{f.name}\]?$|^{f.name} =|^\[\[{section}\.{f.name}\]\]",
                             text, re.M), f"{section}.{f.name} is not in {EXAMPLE.name}"


def test_one_file_sets_both_halves(tmp_path: Path) -> None:
    s = Settings.from_file(write(tmp_path, """
[graph]
disclosure_level = "verified"
trusted_sources = ["accounts"]
limits = { email = 2 }

[session]
handoff_ttl = "5m"
resume_window = "1h30m"
business_numbers = { sms = "+15559990000" }
"""))
    assert s.graph.disclosure_level is LinkKind.VERIFIED and s.graph.is_trusted("accounts")
    assert not s.graph.is_trusted("web") and not GraphConfig().trusted_sources
    assert s.graph.limits == {"email": 2, "phone": 5, "whatsapp": 5, "web_cookie": 50}  # amended
    assert s.session.handoff_ttl == timedelta(minutes=5)
    assert s.session.resume_window == timedelta(hours=1, minutes=30)
    assert s.session.business_numbers == {"whatsapp": "15550100000", "sms": "+15559990000"}
    assert GraphConfig.from_file(write(tmp_path, "[graph]\nlink_threshold = 0.995\n")).link_threshold == 0.995


@pytest.mark.parametrize(("text", "message"), [
    ('[session]\nhandoff_ttl = 30\n', "session.handoff_ttl: expected a duration"),
    ('[session]\nhandoff_ttl = "soon"\n', "session.handoff_ttl: expected a duration"),
    ('[session]\nrecent_turns = "20"\n', "session.recent_turns: expected an integer"),
    ('[session]\nrecent_turns = true\n', "session.recent_turns: expected an integer"),
    ('[session]\nhandof_ttl = "5m"\n', "session.handof_ttl: unknown setting"),
    ('[graph]\ndisclosure_level = "high"\n', "graph.disclosure_level: expected a link kind"),
    ('[graph]\nlink_threshold = "high"\n', "graph.link_threshold: expected a number"),
    ('[graph]\nblocked = "x"\n', "graph.blocked: expected a list"),
    ('[graph]\nblocked = ["ok", 3]\n', "graph.blocked[1]: expected a string"),
    ('[graph]\nlimits = { email = "five" }\n', "graph.limits.email: expected an integer"),
    ('[graph]\nreview_threshold = 0.999\n', "graph: need 0 < review_threshold <= link_threshold"),
    ('[[session.handoff_rules]]\nchannel = "sms"\n', "session.handoff_rules[0]: "),
    ('[[session.handoff_rules]]\nchanel = "sms"\n', "session.handoff_rules[0].chanel: unknown setting"),
    ('[sessions]\n', "sessions: unknown section"),
    ('[graph\n', "not valid TOML"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_file(write(tmp_path, text))
    assert message in str(info.value)


def test_durations() -> None:
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("3d") == timedelta(days=3)
    for bad in ("", "5", "m5", "5 minutes", "-5m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_server_refuses_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[session]\nhandoff_ttl = "soon"\n')
    run = subprocess.run(
        [sys.executable, "-c", "import sys, server; sys.exit(server.main(sys.argv[1:]))",
         "--config", str(path), "--db", str(tmp_path / "g.db"), "--address", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert run.returncode == 2
    assert f"identity-server: error: {path}: session.handoff_ttl: expected a duration" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "g.db").exists()
