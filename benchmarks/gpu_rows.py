"""Markdown rows for benchmarks/RESULTS.md from the GPU check's JSON files.

`benchmarks/gpu_check.sh` runs `benchmarks/run.py` and
`benchmarks/bench_scan.py` with `--output` under one directory; this script
reads every `run_*.json` and `scan_*.json` there and prints the tables to
paste into RESULTS.md, headed by device and date (both recorded in each
JSON by `benchmarks.harness.write_json`).

Usage:

    python benchmarks/gpu_rows.py OUTPUT_DIR [--device-name NAME]
"""

import argparse
import glob
import json
import os


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _width(payload):
    """The model width of a run; files written before 0.2.0 say `d_model`."""
    return payload.get("hidden_dim", payload.get("d_model"))


def _table(header, rule, payloads, cells):
    """Markdown lines: `header`, `rule`, then `cells(payload, row)` of
    every row of every payload."""
    lines = [header, rule]
    for payload in payloads:
        for row in payload.get("rows", []):
            lines.append("| " + " | ".join(cells(payload, row)) + " |")
    return lines


def _run_cells(payload, row):
    cells = [payload["backend"], _width(payload)]
    if "time_ms" not in row:
        error = (row.get("error") or "").strip().splitlines()
        note = error[-1][:60] if error else "no result"
        cells += [row.get("batch"), row.get("length", "-"), row.get("model")]
        return [str(c) for c in cells] + [f"- ({note})", "-"]
    cells += [row["batch"], row["length"], row["model"]]
    times = [_fmt(row["time_ms"]), _fmt(row.get("memory_mb"))]
    return [str(c) for c in cells] + times


def run_rows(payloads):
    """Rows `| backend | width | batch | length | model | ms | MiB |`."""
    return _table(
        "| backend | width | batch | length | model | ms / step | peak MiB |",
        "|---|---:|---:|---:|---|---:|---:|",
        payloads,
        _run_cells,
    )


def _scan_cells(payload, row):
    seconds = row.get("seconds")
    return [
        payload["backend"],
        payload.get("benchmark", ""),
        row["method"],
        str(row.get("length")),
        "-" if seconds is None else _fmt(1000 * seconds),
        _fmt(row.get("speedup_vs_sequential")),
    ]


def scan_rows(payloads):
    """Rows `| backend | op | method | length | ms | speedup |`."""
    return _table(
        "| backend | benchmark | method | length | ms | vs sequential |",
        "|---|---|---|---:|---:|---:|",
        payloads,
        _scan_cells,
    )


def markdown(directory, device_name=None):
    """The Markdown section for the JSON files under `directory`."""

    def load(pattern):
        paths = sorted(glob.glob(os.path.join(directory, pattern)))
        return [json.load(open(path)) for path in paths]

    runs, scans = load("run_*.json"), load("*scan_*.json")
    first = (runs + scans + [{}])[0]
    device = device_name or first.get("device", "unknown device")
    date = first.get("date", "unknown date")
    out = [f"## {device}, {date} (benchmarks/gpu_check.sh)", ""]
    if runs:
        out += ["Forward + backward of one block (`benchmarks/run.py`).", ""]
        out += run_rows(runs) + [""]
    if scans:
        out += ["Scan methods (`benchmarks/bench_scan.py`).", ""]
        out += scan_rows(scans) + [""]
    if not runs and not scans:
        out += ["No benchmark produced a result (see the step logs).", ""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--device-name", default=None)
    args = parser.parse_args(argv)
    print(markdown(args.directory, args.device_name))


if __name__ == "__main__":
    main()
