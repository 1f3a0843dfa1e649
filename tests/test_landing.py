"""The report's first page and its tables: numbers as a person reads them, counts equal to the manifests'."""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import sys
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from nanolab import htmltable, landing
from nanolab.synthetic import iv_voltages, make_run, render_raw
from workflow_runner import REPO, Workdir

SANTIAGO_NOON = {"2025-09-10": 1757516400.0, "2025-09-11": 1757602800.0}

# --- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (2.6029944822513753e-8, "A", "26.03 nA"),
        (0.0000010554462436912685, "A", "1.055 µA"),
        (82302502.33955686, "Ω", "82.30 MΩ"),
        (-3.2e-3, "A", "-3.200 mA"),
        (2.0, "V", "2.000 V"),
        (999.97, "V", "1.000 kV"),  # rounds up into the next prefix
        (0.0, "A", "0 A"),
        (None, "A", ""),
        (float("nan"), "A", ""),
    ],
)
def test_si_prefixes_to_four_significant_digits(value, unit, shown):
    assert htmltable.si(value, unit) == shown


def test_r_squared_never_rounds_a_fit_to_a_perfect_one():
    assert htmltable.r_squared(0.9999999866) == "> 0.9999"
    assert htmltable.r_squared(0.99684) == "0.9968"
    assert htmltable.r_squared(1.0) == "1" and htmltable.r_squared(None) == ""


def test_number_cells_keep_the_exact_value_for_sorting():
    columns = landing.columns_of([{"max_abs_i_A": 2.6029944822513753e-8, "run": 3, "chip": "A67"}], ["run", "chip", "max_abs_i_A"])
    markup = htmltable.table(columns, [{"max_abs_i_A": 2.6029944822513753e-8, "run": 3, "chip": "A67"}])
    assert '<td class="num" data-v="2.6029944822513753e-08">26.03 nA</td>' in markup
    assert '<td class="num" data-v="3.0">3</td>' in markup and "<td>A67</td>" in markup
    assert '<th title="sort">chip</th>' in markup and "max |I|" in markup


def test_cells_are_escaped():
    markup = htmltable.table([htmltable.text("reason", "reason")], [{"reason": "<script>x</script> & 'y'"}])
    assert "<script>" not in markup and "&lt;script&gt;" in markup


# --- counts and lists from manifests (pure) ---------------------------------------------------


def stage_table(with_duplicates: bool) -> pa.Table:
    rows = {
        "source_file": ["d1/a.csv", "d1/b.csv", "d1/c.csv", "d2/d.csv", "x/junk.csv", "d2/._e.csv"],
        "status": ["ok", "ok", "ok", "reject", "reject", "skipped"],
        "reason": [None, None, None, "no '#Data:' line", "unreadable", "macOS resource fork"],
        "proc": ["IV", "IV", "It", None, None, None],
        "date": ["2025-09-10", "2025-09-10", "2025-09-10", "2025-09-11", None, "2025-09-11"],
        "skipped_rows": [0, 2, 0, None, None, None],
        "null_cells": [0, 0, 5, None, None, None],
    }
    if with_duplicates:
        rows["duplicate_of"] = [None, None, "d1/a.csv", None, None, None]
    return pa.table(rows)


def segment_table() -> pa.Table:
    return pa.table(
        {
            "run_id": ["r1", "r2"],
            "date": ["2025-09-10", "2025-09-10"],
            "source_file": ["d1/a.csv", "d1/b.csv"],
            "status": ["ok", "ok"],
            "reason": [None, None],
            "n_segments": [4, 3],
            "complete": [True, False],
            "segment_types": [
                ["forward_positive", "return_positive", "forward_negative", "return_negative"],
                ["forward_positive", "return_positive", "forward_negative"],
            ],
            "segment_points": [[21, 19, 21, 19], [21, 19, 10]],
        }
    )


def test_counts_from_the_manifests_and_duplicates_only_when_recorded():
    flagged = landing.flagged_runs(segment_table(), None)
    counts = landing.count(stage_table(False), segment_table(), flagged)
    assert (counts.raw_files, counts.staged, counts.rejected, counts.skipped, counts.damaged) == (6, 3, 2, 1, 2)
    assert (counts.iv_runs, counts.segmented, counts.flagged, counts.days, counts.iv_days) == (2, 2, 1, 1, 1)  # d2 has rejects only
    assert counts.duplicates is None
    assert landing.count(stage_table(True), segment_table(), flagged).duplicates == 1
    assert landing.staged_only(stage_table(False)) == {"It": 1}


def test_flagged_runs_come_from_the_day_tables_when_drawn_else_from_the_segmentation():
    segments = segment_table()
    without_figures = landing.flagged_runs(segments, None)
    assert [(r["source_file"], r["why"].split(":")[0]) for r in without_figures] == [("d1/b.csv", "incomplete")]
    assert "3 of the 4 segment types" in without_figures[0]["why"]
    day_runs = {"2025-09-10": [{"run": 1, "source_file": "d1/b.csv", "run_id": "r2", "flag": "incomplete", "max_abs_i_A": 1e-6},
                               {"run": 2, "source_file": "d1/a.csv", "run_id": "r1", "flag": "outlier", "max_abs_i_A": 2.5e-5}]}  # fmt: skip
    drawn = landing.flagged_runs(segments, day_runs)
    assert [(r["date"], r["run"], r["why"].split(":")[0]) for r in drawn] == [("2025-09-10", 1, "incomplete"), ("2025-09-10", 2, "outlier")]
    assert drawn[1]["why"] == "outlier: a spike, largest |I| 25.00 µA over ten times the run's own 95th percentile"  # no chip: no median


def test_an_outlier_says_how_far_it_is_from_its_chips_median():
    rows = [{"run": n, "chip": "A67", "max_abs_i_A": peak, "flag": "", "run_id": f"r{n}"} for n, peak in enumerate([1e-6, 1.2e-6, 0.9e-6, 3e-5], 1)]
    rows[3]["flag"] = "outlier"
    segments = pa.table({"run_id": ["r4"], "date": ["d"], "source_file": ["x.csv"], "status": ["ok"], "complete": [True], "n_segments": [4]})
    (flagged,) = landing.flagged_runs(segments, {"2025-09-10": rows})
    assert flagged["why"] == "outlier: largest |I| 30.00 µA, 27.3× above its chip's median (1.100 µA)"


def test_built_at_names_the_labs_timezone_and_utc():
    now = datetime.datetime(2025, 9, 11, 15, 0, tzinfo=datetime.UTC)
    assert landing.built_at("America/Santiago", now) == "2025-09-11 12:00 America/Santiago (15:00 UTC)"


def test_the_version_names_the_checkout_or_the_package_and_the_code(tmp_path):
    version = landing.workflow_version(REPO)
    assert re.search(r"^\S+ · nanolab \S+ · code [0-9a-f]{12}$", version), version
    assert landing.workflow_version(tmp_path).startswith("not a git checkout · ")


# --- the real report --------------------------------------------------------------------------


def write_run(path: Path, procedure: str, start: float, seed: int, **options) -> str:
    parameters, columns, data = make_run(procedure, np.random.default_rng(seed), start, chip_number=seed, **options)
    text = render_raw(procedure, parameters, start, columns, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def lab_tree(raw: Path) -> None:
    """Two days: whole IV sweeps, an aborted one, one with a non-numeric cell, an It run, two rejects."""
    full = iv_voltages(1.0, 0.05)
    for day, noon in SANTIAGO_NOON.items():
        for n in range(2):
            write_run(raw / day / f"IV{day}_{n + 1}.csv", "IV", noon + 600 * n, seed=n + 1, voltages=full)
    write_run(
        raw / "2025-09-11/IV2025-09-11_3.csv", "IV", SANTIAGO_NOON["2025-09-11"] + 1800, seed=3, voltages=iv_voltages(1.0, 0.05, abort_after=50)
    )
    damaged = raw / "2025-09-10/IV2025-09-10_3.csv"
    text = write_run(damaged, "IV", SANTIAGO_NOON["2025-09-10"] + 1800, seed=4, voltages=full)
    lines = text.splitlines(keepends=True)
    lines[-10] = "0.1,oops" + lines[-10][lines[-10].index(",", lines[-10].index(",") + 1) :]
    damaged.write_text("".join(lines))
    write_run(raw / "2025-09-10/It2025-09-10_1.csv", "It", SANTIAGO_NOON["2025-09-10"] + 3000, seed=7)
    (raw / "2025-09-11/broken.csv").write_text("not a measurement\n")
    (raw / "notes").mkdir()
    (raw / "notes/junk.csv").write_text("no header and no date anywhere\n")


class Facts(HTMLParser):
    """The page's `data-count` and `data-fact` cells, and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.links: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._open = attrs.get("data-count") or attrs.get("data-fact")
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_data(self, data):
        if self._open:
            self.values[self._open] = self.values.get(self._open, "") + data

    def handle_endtag(self, tag):
        self._open = None


def embedded(report: str, name: str) -> object:
    """The `var <name> = …;` value of the report's own `<script id=…>` (libraries use these names too)."""
    script = report.index(f'<script id="{name.replace("_", "-")}">')
    start = report.index(f"var {name} = ", script) + len(f"var {name} = ")
    return json.JSONDecoder().raw_decode(report, start)[0]


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Workdir, str]:
    tmp = tmp_path_factory.mktemp("landing")
    wd = Workdir(tmp / "work", tmp / "raw")
    wd.path.mkdir()
    lab_tree(wd.raw_root)
    wd.write_config()
    wd.snakemake()
    wd.snakemake("--report", "results/report.html")
    return wd, (wd.results / "report.html").read_text(encoding="utf-8")


def test_the_first_page_states_the_manifests_counts(reported):
    wd, report = reported
    page = Facts()
    page.feed(embedded(report, "workflow_desc"))
    stage = pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet")
    segments = pq.read_table(wd.results / "03_intermediate/_manifest/manifest.parquet")
    ok = stage.filter(pc.equal(stage["status"], "ok")).to_pylist()
    runs = [row for path in (wd.results / "04_report/iv_day_runs").rglob("*.csv") for row in pacsv.read_csv(path).to_pylist()]
    expected = {
        "raw_files": stage.num_rows,
        "staged": len(ok),
        "rejected": stage["status"].to_pylist().count("reject"),
        "damaged": sum(1 for r in ok if (r["skipped_rows"] or 0) > 0 or (r["null_cells"] or 0) > 0),
        "iv_runs": segments.num_rows,
        "segmented": segments["status"].to_pylist().count("ok"),
        "flagged": sum(1 for r in runs if r["flag"]),
        "days": len({r["date"] for r in ok}),
    }
    assert {key: int(page.values[key]) for key in expected} == expected
    # the tree was built to hold these, so equal counts are not equal zeros
    assert (expected["rejected"], expected["damaged"], expected["days"]) == (2, 1, 2) and expected["flagged"] >= 1
    assert page.values["raw_root"] == str(wd.raw_root.resolve())
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} America/Santiago \(\d{2}:\d{2} UTC\)$", page.values["built"])
    assert " · nanolab " in page.values["version"] and page.values["days_covered"] == "2025-09-10 to 2025-09-11 (2 days)"


def test_the_first_page_lists_rejects_with_reasons_and_flagged_runs_with_their_day(reported):
    wd, report = reported
    description = embedded(report, "workflow_desc")
    for row in pacsv.read_csv(wd.results / "02_stage/_manifest/rejects.csv").to_pylist():
        assert row["source_file"] in description and row["reason"].replace("'", "&#x27;") in description
    assert "2025-09-11/IV2025-09-11_3.csv" in description and "incomplete: 3 of the 4 segment types" in description
    assert "Staged only" in description and "It 1" in description
    page = Facts()
    page.feed(description)
    results = embedded(report, "results")
    figure = "results/04_report/iv_days/month=2025-09/date=2025-09-11.png"
    assert figure in results and [link for link in page.links if f"resultPath:'{figure}'" in urllib.parse.unquote(link)]


def test_the_report_lists_the_tables_as_sortable_pages(reported):
    wd, report = reported
    results = embedded(report, "results")
    pages = {path: entry for path, entry in results.items() if path.endswith(".html") and "/tables/" in path}
    assert set(pages) == {
        "results/04_report/tables/rejects.html",
        "results/04_report/tables/iv_fits/month=2025-09.html",
        "results/04_report/tables/iv_day_runs/date=2025-09-10.html",
        "results/04_report/tables/iv_day_runs/date=2025-09-11.html",
    }
    assert all(entry["mime_type"] == "text/html" for entry in pages.values())  # shown in the page, not downloaded
    runs_page = data_of(pages["results/04_report/tables/iv_day_runs/date=2025-09-11.html"]["data_uri"])
    runs = pacsv.read_csv(wd.results / "04_report/iv_day_runs/month=2025-09/date=2025-09-11.csv").to_pylist()
    for run in runs:
        shown = htmltable.si(run["max_abs_i_uA"] * 1e-6, "A")  # the CSV gives µA, the page picks the prefix
        assert re.search(rf'<td class="num" data-v="{run["run"]}.0">{run["run"]}</td><td>{re.escape(run["source_file"])}</td>.*?>{shown}<', runs_page)
    fits_page = data_of(pages["results/04_report/tables/iv_fits/month=2025-09.html"]["data_uri"])
    fits = pacsv.read_csv(wd.results / "04_report/iv_fits/month=2025-09.csv").to_pylist()
    assert all(htmltable.si(row["resistance_ohm"], "Ω") in fits_page for row in fits) and "table.sortable" in fits_page


def data_of(uri: str) -> str:
    header, _, payload = uri.partition(",")
    return base64.b64decode(payload).decode() if header.endswith(";base64") else urllib.parse.unquote(payload)


def test_the_landing_job_never_imports_pandas(reported, tmp_path):
    """pyarrow would import it (~0.5 s CPU) on its first conversion of a Python object: the job's cost doubled."""
    wd, _ = reported
    args = next((wd.path / ".snakemake/nanolab/args/landing_page").glob("*.args"))
    results = wd.results
    argv = [f"@{args}", "--stage-manifest", str(results / "02_stage/_manifest/manifest.parquet")]
    argv += ["--segment-manifest", str(results / "03_intermediate/_manifest/manifest.parquet"), "--landing", str(tmp_path / "landing.html")]
    argv += ["--rejects-table", str(tmp_path / "rejects.html"), "--fits-tables", str(tmp_path / "fits"), "--runs-tables", str(tmp_path / "runs")]
    code = f"import sys; from nanolab import landing; landing.main({argv!r}); print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=wd.path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert (tmp_path / "landing.html").read_text(encoding="utf-8").count("data-count=") == 11
