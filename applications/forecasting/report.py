"""Tables of test MSE next to the numbers of Data Continuity Matters.

Data Continuity Matters (Qu et al., ICLR 2023) reports ETTh1 univariate
test MSE; the tables follow its layout.

Rows are horizons, columns models; the paper's ETTh1 univariate columns
(Transformer, Transformer+Lip, Informer, Informer+Lip) come first, the
persistence (last value) forecast of the same test windows last.

`python -m applications.forecasting.report runs/forecasting` collects every
`result.json` below a directory and prints (or writes, `--output`) the
markdown table.
"""

import argparse
import glob
import json
import os
import sys

# ETTh1, univariate ("S"), test MSE on the standardised scale.
POSTER_ETTH1_S_MSE = {
    "Transformer": {
        24: 0.0705,
        48: 0.1890,
        168: 0.3977,
        336: 0.4152,
        720: 0.6559,
    },
    "Transformer+Lip": {
        24: 0.0702,
        48: 0.1672,
        168: 0.3081,
        336: 0.4132,
        720: 0.6223,
    },
    "Informer": {24: 0.0984, 48: 0.1585, 168: 0.1831, 336: 0.2216, 720: 0.2688},
    "Informer+Lip": {
        24: 0.0888,
        48: 0.1262,
        168: 0.1058,
        336: 0.1181,
        720: 0.1313,
    },
}

MODEL_TITLES = {
    "s4d": "S4D",
    "etsmlp": "ETSMLP",
    "etsmlp_gate": "ETSMLP-Gate",
    "mamba": "Mamba",
    "mamba2": "Mamba-2",
    "transformer": "Transformer (ours)",
    "informer": "Informer (ours)",
}


def column_name(result):
    """ "S4D", "S4D+Lip", ... for a result dict."""
    config = result["config"]
    title = MODEL_TITLES.get(config["model"], config["model"])
    return title + ("+Lip" if config.get("lipschitz") else "")


def load_results(directory):
    """Every `result.json` below `directory`, as dicts."""
    pattern = os.path.join(directory, "**", "result.json")
    results = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        with open(path) as f:
            results.append(json.load(f))
    return results


def results_table(results, metric="test_mse", poster=True):
    """A markdown table: horizons down, models across (best value in bold).

    Args:
        results: result dicts of `run_forecast` (one data set and features
            mode; the paper's columns only make sense for ETTh1 "S").
        metric: "test_mse" or "test_mae".
        poster: prepend the MSE columns of Data Continuity Matters.

    Returns:
        The table as a string.
    """
    columns = {}
    for result in results:
        horizon = int(result["config"]["horizon"])
        columns.setdefault(column_name(result), {})[horizon] = result[metric]
    persistence = {
        int(r["config"]["horizon"]): r[f"persistence_{metric}"]
        for r in results
        if f"persistence_{metric}" in r
    }
    if persistence:
        columns["Persistence"] = persistence
    if poster and metric == "test_mse":
        columns = {**POSTER_ETTH1_S_MSE, **columns}
    horizons = sorted({h for values in columns.values() for h in values})
    names = list(columns)
    lines = [
        "| h | " + " | ".join(names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for horizon in horizons:
        values = [columns[name].get(horizon) for name in names]
        present = [v for v in values if v is not None]
        best = min(present) if present else None
        cells = []
        for value in values:
            if value is None:
                cells.append("–")
            elif value == best:
                cells.append(f"**{value:.4f}**")
            else:
                cells.append(f"{value:.4f}")
        lines.append(f"| {horizon} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="Directory with result.json files.")
    parser.add_argument(
        "--metric", default="test_mse", choices=("test_mse", "test_mae")
    )
    parser.add_argument("--no-poster", action="store_true")
    parser.add_argument("--output", help="Write the table to this file.")
    args = parser.parse_args(argv)
    results = load_results(args.directory)
    if not results:
        print(f"No result.json below {args.directory}.", file=sys.stderr)
        return 1
    table = results_table(results, args.metric, poster=not args.no_poster)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
