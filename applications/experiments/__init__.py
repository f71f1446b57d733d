"""Experiments that check the papers' claims at CPU scale.

Each module is a script, `python -m applications.experiments.<name>`, with
a `--quick` mode (seconds, for the test suite) and a full mode sized for a
2-core CPU. Every script writes `result.json`, `result.md` and `result.png`
into its output directory (see `applications.experiments.common`).
"""
