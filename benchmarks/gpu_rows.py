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


def run_rows(payloads):
    """Rows `| backend | width | batch | length | model | ms | MiB |`."""
    lines = [
        "| backend | width | batch | length | model | ms / step | peak MiB |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for payload in payloads:
        for row in payload.get("rows", []):
            if "time_ms" not in row:
                error = (row.get("error") or "").strip().splitlines()
                note = error[-1][:60] if error else "no result"
                lines.append(
                    f"| {payload['backend']} | {_width(payload)} | "
                    f"{row.get('batch')} | {row.get('length', '-')} | "
                    f"{row.get('model')} | - ({note}) | - |"
                )
                continue
            lines.append(
                f"| {payload['backend']} | {_width(payload)} | "
                f"{row['batch']} | {row['length']} | {row['model']} | "
                f"{_fmt(row['time_ms'])} | {_fmt(row.get('memory_mb'))} |"
            )
    return lines


def scan_rows(payloads):
    """Rows `| backend | op | method | length | ms | speedup |`."""
    lines = [
        "| backend | benchmark | method | length | ms | vs sequential |",
        "|---|---|---|---:|---:|---:|",
    ]
    for payload in payloads:
        for row in payload.get("rows", []):
            seconds = row.get("seconds")
            ms = "-" if seconds is None else _fmt(1000 * seconds)
            lines.append(
                f"| {payload['backend']} | {payload.get('benchmark', '')} | "
                f"{row['method']} | {row.get('length')} | {ms} | "
                f"{_fmt(row.get('speedup_vs_sequential'))} |"
            )
    return lines


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
