"""Runs the test suite once per Keras backend; fails if any backend fails.

Usage: python tests/run_all_backends.py [pytest arguments]

The backend is fixed per process, so each backend gets its own pytest run
(with `KERAS_BACKEND` set). Set `KERAS_SSM_BACKENDS=jax,torch` to run a
subset and `KERAS_SSM_WORKERS` to change the number of pytest-xdist workers.

Tests marked `backend_independent` (NumPy data, files, argument parsing,
tables) run under the first backend only: the later runs deselect them
(`KERAS_SSM_SKIP_BACKEND_INDEPENDENT=1`, read by tests/conftest.py).

The tests compile many small programs once each (every JAX test, and the
TensorFlow tests that ask for XLA), so the runs lower XLA's LLVM
optimisation level (`TEST_XLA_FLAGS`, unless `XLA_FLAGS` is set): the JAX
run then takes about a third less time. The HLO passes that decide what is
computed still run, and the float64 reference tests hold either way.
"""

import os
import subprocess
import sys
import time

BACKENDS = ("jax", "tensorflow", "torch")

# XLA's CPU backend without LLVM's expensive passes: the compiled code is
# slower, which the tests' tiny shapes never notice.
TEST_XLA_FLAGS = (
    "--xla_backend_optimization_level=0 "
    "--xla_llvm_disable_expensive_passes=true"
)


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    backends = os.environ.get("KERAS_SSM_BACKENDS", ",".join(BACKENDS))
    workers = os.environ.get("KERAS_SSM_WORKERS", "2")
    results = {}
    for index, backend in enumerate(backends.split(",")):
        env = dict(os.environ, KERAS_BACKEND=backend)
        env.setdefault("XLA_FLAGS", TEST_XLA_FLAGS)
        if index:  # the backend-independent tests ran under the first one
            env["KERAS_SSM_SKIP_BACKEND_INDEPENDENT"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [sys.executable, "-m", "pytest", "-q", "-n", workers]
        command += ["-p", "no:cacheprovider", *argv]
        print(f"=== KERAS_BACKEND={backend}: {' '.join(command)}", flush=True)
        start = time.time()
        code = subprocess.call(command, cwd=root, env=env)
        results[backend] = (code, time.time() - start)
    print("\n=== summary")
    for backend, (code, seconds) in results.items():
        status = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"{backend:>10}: {status} in {seconds:.0f} s")
    failed = sum(code != 0 for code, _ in results.values())
    print(f"backends: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
