"""What each mechanism beside Snakemake's own bookkeeping saves, at the user's level (docs/design.md).

    python bench/mechanisms.py                 # lab scale (the bench's tree), 2 rounds
    python bench/mechanisms.py --small         # 1,200 files: a quick check of the harness
    python bench/mechanisms.py --snakemake-venv /tmp/sm-latest   # also: the pinned Snakemake against another

For each mechanism, a copy of the workflow with it taken out (a text patch of one place, checked to apply)
runs in its own work folder beside the workflow as it is: a full run (fresh results/, figures off as in the
bench), the no-op after it (median of 3) and one edited raw file. Variants alternate within each round,
so a slow phase of the machine hits them all; each figure is the median over the rounds. Prints the
saving of each mechanism per case (without it minus with it), in seconds and % of the case.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import REPO, edit_one_file, empty_trash, generate, set_aside, timed, tool_env, write_config

# (file, text in it, its replacement): the mechanism taken out where it is applied.
PATCHES = {
    "valid-config memo": [
        ("workflow/rules/common.smk", "from nanolab.config import checked_config, validated, value_notes\n",
         "from nanolab.config import checked_config, value_notes\n\n\n"
         "def validated(config, schema, check, memo, version):\n    return check(config)\n"),
    ],
    "schema JSON copy": [
        ("scripts/nanolab/wiring.py", 'return document, str(schema_copy(document, LISTS / "schema"))', "return document, schema_file"),
    ],
    "nopandas": [("scripts/nanolab/nopandas.py", "def without_pandas() -> None:\n", "def without_pandas() -> None:\n    return\n")],
    "rate-limiter removal": [
        ("scripts/nanolab/snakehooks.py", "    if not SUPPORTED:\n        return\n    limit =", "    return\n    limit ="),
    ],
    "gc.freeze at exit": [("scripts/nanolab/snakehooks.py", "        gc.freeze()\n", "        pass\n")],
}  # fmt: skip
CASES = ("full run", "no-op", "one file edited")


def variant(name: str, patches: list[tuple[str, str, str]], work: Path) -> Path:
    """A copy of the workflow (Snakefile, workflow/, scripts/, config) with the patches applied."""
    copy = work / "variants" / name.replace(" ", "-")
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    for part in ("Snakefile", "config.yaml", "workflow", "scripts", "envs", "profiles"):
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy)(
            source, copy / part, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {})
        )
    for file, old, new in patches:
        text = (copy / file).read_text()
        assert text.count(old) == 1, f"{name}: the patch of {file} no longer applies"
        (copy / file).write_text(text.replace(old, new))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy / "scripts")], check=True)
    return copy


def command(copy: Path, python: str) -> list[str]:
    return [python, "-m", "snakemake", "--snakefile", str(copy / "Snakefile"), "--cores", "2"]


def measure(copy: Path, python: str, raw: Path, folder: Path) -> dict[str, tuple[float, float]]:
    """{case: (wall, CPU)} of one variant in its own fresh work folder."""
    set_aside(folder)
    folder.mkdir(parents=True)
    write_config(folder, raw, figures=False)
    env_command = ["env", f"PYTHONPATH={copy / 'scripts'}", f"PATH={Path(python).parent}:{tool_env()['PATH']}", *command(copy, python)]
    full = timed("full run", env_command, folder)
    no_ops = [timed("no-op", env_command, folder) for _ in range(3)]
    edit_one_file(raw)
    edited = timed("one file edited", env_command, folder)
    no_op = sorted(no_ops, key=lambda m: m.wall_s)[1]
    return {"full run": (full.wall_s, full.cpu_s), "no-op": (no_op.wall_s, no_op.cpu_s), "one file edited": (edited.wall_s, edited.cpu_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--snakemake-venv", type=Path, help="a venv with another Snakemake (and this project's requirements)")
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    args = parser.parse_args()
    raw = args.work / ("raw-small" if args.small else "raw-lab-x1")
    generate(raw, 1.0, args.small, 0)
    python = sys.executable
    variants = {"as it is": (variant("as it is", [], args.work), python)}
    variants |= {f"without {name}": (variant(name, patches, args.work), python) for name, patches in PATCHES.items()}
    if args.snakemake_venv:
        version = subprocess.run(
            [str(args.snakemake_venv / "bin/python"), "-m", "snakemake", "--version"], capture_output=True, text=True
        ).stdout.strip()
        variants[f"Snakemake {version}"] = (variants["as it is"][0], str(args.snakemake_venv / "bin/python"))
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, (copy, interpreter) in variants.items():
            results[name].append(measure(copy, interpreter, raw, args.work / "mechanisms" / name.replace(" ", "-")))
            print(f"round {r + 1}: {name}: " + ", ".join(f"{c} {w:.2f} s / {u:.1f} CPU-s" for c, (w, u) in results[name][-1].items()), flush=True)
    median = {
        name: {case: tuple(statistics.median(run[case][k] for run in runs) for k in (0, 1)) for case in CASES} for name, runs in results.items()
    }
    base = median["as it is"]
    print(f"\nmedian of {args.rounds} rounds, wall s (CPU s); saving = without it minus with it")
    print(f"{'':36}" + "".join(f"{case:>30}" for case in CASES))
    for name, cases in median.items():
        cells = []
        for case in CASES:
            wall, cpu = cases[case]
            saving = "" if name == "as it is" else f" {100 * (wall - base[case][0]) / base[case][0]:+.1f} %"
            cells.append(f"{wall:.2f} ({cpu:.1f}){saving}")
        print(f"{name:36}" + "".join(f"{cell:>30}" for cell in cells))
    out = REPO / "bench" / "results" / f"mechanisms-{'small' if args.small else 'lab'}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rounds": results, "median": median}, indent=2))
    print(f"written {out}")
    empty_trash(args.work / "mechanisms")


if __name__ == "__main__":
    main()
