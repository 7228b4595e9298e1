"""The relink report a person reads: rendered tables (no JSON), charts whose texts do not overlap
(measured in headless Chromium, with a screenshot), the match-weight histogram with both
thresholds, precision/recall against the threshold and false merges/splits with their links
when labels exist, every guardrail kind, dry-run changes counted in identifiers and customers,
and `--save-model` so a previewed model applies as is."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from batch.cli import main as batch_main
from batch.quality import load_synthetic
from batch.relink import relink
from batch.report import VIOLATION_KINDS, summary_text, write_report
from identity_graph.config import GraphConfig
from identity_graph.matching.model import load_model, save_model
from identity_graph.store import open_store
from tests.browser import dump_dom, screenshot
from tests.test_batch import STARTER, _opts

# Runs in the page: every pair of texts inside one chart, and every pair of charts, must not
# overlap; the result goes into the DOM for dump_dom to read.
MEASURE = """<script>
window.addEventListener('load', () => {
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
                        a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const out = {charts: 0, texts: 0, overlaps: []};
  const charts = [...document.querySelectorAll('svg.chart')];
  charts.forEach((svg, i) => {
    out.charts++;
    const texts = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
    out.texts += texts.length;
    for (let x = 0; x < texts.length; x++) for (let y = x + 1; y < texts.length; y++)
      if (hit(texts[x][1], texts[y][1]))
        out.overlaps.push([svg.getAttribute('aria-label'), texts[x][0], texts[y][0]]);
    charts.slice(i + 1).forEach(o => { if (hit(svg.getBoundingClientRect(), o.getBoundingClientRect()))
      out.overlaps.push(['charts', svg.getAttribute('aria-label'), o.getAttribute('aria-label')]); });
  });
  const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A graph relinked once, and labels WITHOUT a household column."""
    folder = tmp_path_factory.mktemp("report")
    db = folder / "g.db"
    with open_store(str(db)) as store:
        load_synthetic(store, 250, seed=4, labels_out=folder / "full.parquet")
        relink(store, GraphConfig(link_threshold=0.9999, review_threshold=0.9), _opts())
    without_household = pq.read_table(folder / "full.parquet").select(["key", "cluster"])
    pq.write_table(without_household, folder / "labels.parquet")
    return db, folder / "labels.parquet"


def test_the_page_renders_tables_and_charts_that_do_not_overlap(labelled, tmp_path: Path) -> None:
    db, labels = labelled
    with open_store(str(db)) as store:
        res = relink(store, options=_opts(dry_run=True, charts=True, labels_path=str(labels), samples=4))
    rep = res.report
    q = rep["quality"]
    assert "household_false_pairs" not in q  # no household column: none claimed
    assert q["false_merges"] and all(m["link"] for m in q["false_merges"])
    for m in q["false_merges"]:  # the cause joins two different people inside that customer
        assert m["link"]["a"] in m["identifiers"] or len(m["identifiers"]) == 12
    curve = q["threshold_curve"]
    assert [c["threshold"] for c in curve] == sorted(c["threshold"] for c in curve)
    assert all(a["predicted_pairs"] >= b["predicted_pairs"] for a, b in itertools.pairwise(curve))
    bins = rep["match_weight_histogram"]["bins"]
    assert sum(b["pairs"] for b in bins) == rep["counts"]["pairs_above_review_threshold"]
    assert "quality" in summary_text(rep)

    _, page = write_report(rep, tmp_path / "reports")
    text = page.read_text()
    cells = re.findall(r"<td>(.*?)</td>", text, flags=re.S)
    assert cells and not [c for c in cells if c.lstrip().startswith(("{", "[{", '["'))]
    for kind in VIOLATION_KINDS:
        assert f"<td>{kind}</td>" in text, kind
    assert "link threshold p ≥" in text and "review threshold p ≥" in text
    assert "False merges" in text and ("—probable by batch" in text or "—observed" in text)

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", MEASURE + "</body>"))
    dom = dump_dom(probe)
    measured = json.loads(re.search(r'<pre id="measured">(.*?)</pre>', dom, flags=re.S).group(1))
    assert measured["charts"] == 3 and measured["texts"] > 30, measured  # sizes, weights, P/R
    assert measured["overlaps"] == [], measured["overlaps"]
    png = screenshot(page, tmp_path / "report.png", (1200, 3000))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def test_labels_without_household_and_save_model_on_a_dry_run(labelled, tmp_path: Path, capsys) -> None:
    db0, labels = labelled
    db = tmp_path / "g.db"
    shutil.copy(db0, db)
    models, reports = tmp_path / "models", tmp_path / "reports"
    args = ["relink", "--db", str(db), "--quiet", "--no-charts", "--report-dir", str(reports),
            "--models-dir", str(models), "--labels", str(labels)]
    assert batch_main([*args, "--dry-run", "--save-model"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "household false pairs" not in out
    [saved] = models.glob("*.json")
    assert f"relink --model {saved}" in out
    preview = json.loads((reports / "latest.json").read_text())
    assert preview["model"]["version"] == load_model(saved).version
    assert batch_main([*args, "--model", str(saved)]) == 0  # applies exactly what was previewed
    applied = json.loads((reports / "latest.json").read_text())
    assert applied["model"]["version"] == preview["model"]["version"]
    assert applied["changes"] == preview["changes"]
    assert applied["counts"]["customers"] == preview["counts"]["customers"]


def test_a_new_model_version_counts_as_rescored_not_as_links_replaced(labelled, tmp_path: Path) -> None:
    db0, _ = labelled
    db = tmp_path / "g.db"
    shutil.copy(db0, db)
    starter = load_model(STARTER)
    renamed = type(starter)(version="starter-renamed", settings=starter.settings,
                            term_frequencies=starter.term_frequencies, metadata=starter.metadata)
    path = tmp_path / "renamed.json"
    save_model(renamed, path)
    strict = GraphConfig(link_threshold=0.9999, review_threshold=0.9)
    with open_store(str(db)) as store:
        rep = relink(store, strict, _opts(dry_run=True, model_path=str(path))).report
    c, ch = rep["counts"], rep["changes"]
    assert c["links_added"] == c["links_removed"] > 0  # every batch link gets a new id
    assert ch["pairs_rescored"] == c["links_added"]
    assert (ch["pairs_linked"], ch["pairs_unlinked"], ch["pairs_kind_changed"]) == (0, 0, 0)
    assert (ch["identifiers_moved"], ch["customers_changed"]) == (0, 0)
    text = summary_text(rep)
    assert f"{c['links_added']:,} re-scored only" in text and "0 change customer" in text
