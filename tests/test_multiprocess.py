"""Two processes train like one: data parallelism across processes.

Both processes run on this machine and talk over 127.0.0.1 (free ports are
picked at run time); every run has a subprocess timeout. The test runs
under the backend of the suite (`KERAS_BACKEND`): torchrun for PyTorch, two
plain processes with `JAX_*` variables for JAX and `TF_CONFIG` for
TensorFlow.
"""

import json
import os
import re
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import multiprocess_worker
from tests.helpers import rotated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "multiprocess_worker.py")
# Generous: a run takes ~10-20 s on an idle 2-core machine, but several
# times that when the machine is shared; the limit only catches hangs.
RUN_TIMEOUT = 300


def free_ports(count):
    """`count` distinct free TCP ports on the loopback interface."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _base_env(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT)
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["CUDA_VISIBLE_DEVICES"] = ""
    for name in (
        "XLA_FLAGS",
        "TF_CONFIG",
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "JAX_COORDINATOR_ADDRESS",
        "JAX_NUM_PROCESSES",
        "JAX_PROCESS_ID",
    ):
        env.pop(name, None)
    return env


def run_two_processes(backend, output_dir, extra_args=(), command=None):
    """Starts two worker processes; returns (returncodes, combined output).

    `command` replaces the worker script and its arguments (e.g.
    `["-m", "applications.lra", ...]`).
    """
    env = _base_env(backend)
    args = command or [WORKER, str(output_dir), *extra_args]
    if backend == "torch":
        (port,) = free_ports(1)
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes=1",
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            *args,
        ]
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"torchrun hung past {RUN_TIMEOUT}s: {error}")
        return [done.returncode], done.stdout + done.stderr
    ports = free_ports(2)
    processes = []
    for index in range(2):
        process_env = dict(env)
        if backend == "jax":
            process_env.update(
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{ports[0]}",
                JAX_NUM_PROCESSES="2",
                JAX_PROCESS_ID=str(index),
            )
        else:
            workers = [f"127.0.0.1:{port}" for port in ports]
            process_env["TF_CONFIG"] = json.dumps(
                {
                    "cluster": {"worker": workers},
                    "task": {"type": "worker", "index": index},
                }
            )
        processes.append(
            subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=process_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs, codes = [], []
    for process in processes:
        try:
            out, _ = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail(f"a {backend} process hung past {RUN_TIMEOUT}s")
        outputs.append(out)
        codes.append(process.returncode)
    return codes, "\n".join(outputs)


@pytest.mark.slow
@rotated(2, "two CLI processes start and train")
def test_the_cli_console_shows_one_header_and_one_result(tmp_path):
    backend = keras.backend.backend()
    command = [
        "-m", "applications.lra", "--task", "listops", "--model", "s4d",
        "--max-train", "16", "--max-eval", "8", "--max-length", "16",
        "--depth", "1", "--hidden-dim", "8", "--batch-size", "8",
        "--epochs", "1", "--data-parallel", "--verbose", "2",
        "--output-dir", str(tmp_path / "run"),
    ]  # fmt: skip
    env_cache = str(tmp_path / "cache")
    os.environ["KERAS_SSM_CACHE"] = env_cache
    try:
        codes, output = run_two_processes(backend, tmp_path, command=command)
    finally:
        del os.environ["KERAS_SSM_CACHE"]
    assert all(code == 0 for code in codes), output[-4000:]
    assert output.count("Task listops") == 1, output[-4000:]
    assert output.count("Test accuracy:") == 1, output[-4000:]
    assert output.count("Result written") == 1, output[-4000:]
    # At most one progress line (`--verbose 2`: "2/2 - 1s - ..."): process
    # 0's; the other ranks train silently.
    progress = re.findall(r"^\d+/\d+ - ", output, flags=re.MULTILINE)
    assert len(progress) <= 1, output[-4000:]
    assert (tmp_path / "run" / "result.json").exists()


@pytest.fixture(scope="module")
def one_process_reference():
    losses, weights = multiprocess_worker.train()
    return losses, [np.array(w) for w in weights]


@pytest.mark.slow
@rotated(1, "two processes train against a one-process run")
def test_two_processes_match_one_process(tmp_path, one_process_reference):
    backend = keras.backend.backend()
    codes, output = run_two_processes(backend, tmp_path)
    assert all(code == 0 for code in codes), output[-4000:]
    one_losses, one_weights = one_process_reference
    # Training moved the loss, so equal trajectories are not trivial.
    assert one_losses[-1] < one_losses[0] - 1e-3
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.json") as f:
            report = json.load(f)
        np.testing.assert_allclose(
            report["losses"], one_losses, rtol=1e-4, atol=1e-5
        )
        assert len(report["weights"]) == len(one_weights)
        for got, want in zip(report["weights"], one_weights):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# What each backend says when a peer died: torchrun's summary of the failed
# rank; gloo's broken connection (JAX); the coordination service's missed
# heartbeats (JAX, TensorFlow); keras-ssm's collective error (PyTorch).
DEAD_PEER_MESSAGES = re.compile(
    r"ChildFailedError|CollectiveError|Connection reset by peer|"
    r"heartbeat|unhealthy"
)


@pytest.mark.slow
@rotated(2, "two processes wait out a dead peer")
def test_a_dead_process_fails_the_run_with_a_message(tmp_path):
    backend = keras.backend.backend()
    codes, output = run_two_processes(backend, tmp_path, ["--die-rank", "1"])
    # The survivor fails (within the subprocess timeout) instead of hanging
    # or finishing: it never writes its result.
    assert any(code != 0 for code in codes), output[-4000:]
    assert not (tmp_path / "rank0.json").exists(), output[-4000:]
    assert DEAD_PEER_MESSAGES.search(output), output[-4000:]


# Fast checks of the pieces, in this process.

LAUNCHER_VARIABLES = {
    "torch": {"RANK": "1", "WORLD_SIZE": "2"},
    "jax": {
        "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1",
    },
    "tensorflow": {
        "TF_CONFIG": json.dumps(
            {
                "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                "task": {"type": "worker", "index": 1},
            }
        )
    },
}


@pytest.mark.backend_independent
@pytest.mark.parametrize("launcher", sorted(LAUNCHER_VARIABLES))
def test_process_layout_reads_each_launcher(monkeypatch, launcher):
    from keras_ssm.distribute import environment

    for names in LAUNCHER_VARIABLES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    assert environment.process_layout(launcher) == (0, 1)
    for name, value in LAUNCHER_VARIABLES[launcher].items():
        monkeypatch.setenv(name, value)
    assert environment.process_layout(launcher) == (1, 2)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "variables, match",
    [
        ({"JAX_NUM_PROCESSES": "2"}, "JAX_PROCESS_ID"),
        (
            {
                "JAX_COORDINATOR_ADDRESS": "h:1",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": "2",
            },
            "process index",
        ),
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK"),
    ],
)
def test_bad_launcher_variables_name_the_variable(
    monkeypatch, variables, match
):
    from keras_ssm.distribute import environment

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    launcher = (
        "jax"
        if "JAX_NUM_PROCESSES" in variables
        else "tensorflow"
        if "TF_CONFIG" in variables
        else "torch"
    )
    with pytest.raises(ValueError, match=match):
        environment.process_layout(launcher)


@pytest.mark.backend_independent
def test_sharded_batches_together_make_the_global_batches():
    from keras_ssm.distribute import ShardedBatches

    x = np.arange(20)[:, None].astype("float32")
    y = np.arange(20).astype("int32")
    parts = [
        ShardedBatches((x, y), i, 2, batch_size=8, shuffle=True, seed=3)
        for i in range(2)
    ]
    assert len(parts[0]) == 3
    for epoch in range(2):
        seen = []
        for step in range(3):
            (x0, y0), (x1, y1) = parts[0][step], parts[1][step]
            np.testing.assert_array_equal(x1[:, 0], y1)
            assert len(y0) == len(y1)  # equal parts (JAX needs them)
            np.testing.assert_array_equal(x0[:, 0], y0)
            seen += list(y0) + list(y1)
        # Each epoch covers every sample (the last batch of 4 splits 2 + 2)
        # in a shuffled order shared by both processes.
        assert sorted(seen) == list(range(20))
        assert seen != list(range(20))
        for part in parts:
            part.on_epoch_end()


@pytest.mark.backend_independent
def test_sharded_batches_reject_bad_arguments():
    from keras_ssm.distribute import ShardedBatches

    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="process_index"):
        ShardedBatches((x,), 2, 2, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        ShardedBatches((x,), 0, 2, batch_size=0)
    with pytest.raises(ValueError, match="cannot be split"):
        ShardedBatches((x,), 0, 2, batch_size=1)[0]


def test_cli_scope_asks_for_data_parallel_when_launched_many(monkeypatch):
    from applications.common import training

    backend = keras.backend.backend()
    for name, value in LAUNCHER_VARIABLES[backend].items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="--data-parallel"):
        training.data_parallel_scope(enabled=False)
    assert not training.is_chief()
