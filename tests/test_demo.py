"""The demo plays the refrigerator story through the real gRPC API and prints a transcript."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from session.demo import main

ARRIVAL = re.compile(r"^  \[(web|sms|whatsapp)[^\]]*\] conversation (conv_\w+) \((new|resumed from \w+)\)")


def test_the_demo_transcript_shows_one_conversation_across_three_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "demo.db")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    arrivals = [m.groups() for line in lines if (m := ARRIVAL.match(line))]
    assert [(channel, how) for channel, _, how in arrivals] == [
        ("web", "new"),
        ("sms", "resumed from web"),
        ("whatsapp", "resumed from sms"),
        ("web", "resumed from whatsapp"),  # the handoff code, on her tablet
    ]
    assert len({cid for _, cid, _ in arrivals}) == 1  # the same conversation on every channel
    # What the bot remembers when SMS picks it up, and how the story ends.
    assert "state intact on arrival: flow=order step=choose_model" in out
    # The phone was only typed on the web (a claim): the web chat is told nothing about it.
    assert "the phone is typed, not held" in out and "handoff suggested: sms" not in out
    assert "handoff suggested: whatsapp (purchase_support)" in out
    assert "the code again: FAILED_PRECONDITION" in out
    assert "final state: flow=order step=paid" in out and "order_id=FR-10042" in out
    assert "one conversation: True; channels: web, sms, whatsapp (3)" in out
    assert "state intact across channels: True" in out
    assert "conversations of this customer: 1" in out
    assert re.search(r"metrics: customers=1 multi_channel_share=1\.00 conversations=1", out)
    turns = [line for line in lines if re.match(r"^  #\d+ +(web|sms|whatsapp) ", line)]
    assert [t.split()[1] for t in turns].count("whatsapp") == 3 and len(turns) == 11


def test_the_demo_runs_in_a_temporary_directory_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "state intact across channels: True" in capsys.readouterr().out
