"""`diffrl bench --address` against a real two-node Ray cluster the test starts itself on the
loopback interface: `ray start --head` and a second node process that joins it, one CPU each, so
two one-CPU jobs must land on different nodes; results are gathered as for a local run."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

RAY = shutil.which("ray")
pytestmark = pytest.mark.skipif(RAY is None, reason="the `ray` command is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ray {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture
def cluster():
    """(HOST:PORT, environment) of a head and one worker node on 127.0.0.1, one CPU each, with
    token authentication: a token made for the test, given to both nodes and to the driver."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    node = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        ray_cli("start", "--head", f"--port={port}", f"--temp-dir={temp}",
                "--include-dashboard=false", *node, env=env)  # fmt: skip
        ray_cli("start", f"--address={address}", *node, env=env)
        yield address, env
    finally:
        stop_cluster(temp, address)
        shutil.rmtree(temp, ignore_errors=True)


def stop_cluster(temp: str, address: str) -> None:
    """Kill this cluster's processes only. `ray stop` kills every Ray process on the machine:
    a user's sweep running beside the suite, or another test worker's local instance. A
    cluster's daemons name its temp dir or the head's address on their command lines; the
    agents and workers they start are their descendants."""
    parents, cluster = {}, set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit():
                args = (proc / "cmdline").read_bytes().decode(errors="replace")
                parents[int(proc.name)] = int(
                    (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
                if temp in args or address in args:
                    cluster.add(int(proc.name))
        except OSError:  # the process ended meanwhile
            continue
    while grown := {pid for pid, ppid in parents.items() if ppid in cluster} - cluster:
        cluster |= grown
    for pid in cluster - {os.getpid()}:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_a_sweep_runs_on_both_nodes_of_a_cluster_and_is_gathered(tmp_path, cluster):
    """The driver is a separate `diffrl bench` process, as a user runs it: Ray reads its
    authentication settings once per process."""
    address, env = cluster
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "diffrl.cli", "bench", "--algos", "bc",
            "--datasets", "bandit:corners", "--seeds", "0,1",
            "--steps", "20", "--eval-every", "20", "--set", "hidden=8",
            "--address", address, "--cpus-per-job", "1", "--out", str(out)]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    log = done.stdout
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok"], log
    assert len({r["node"] for r in rows}) == 2, rows  # one job on each node
    assert all(r["final_step"] == "20" for r in rows)
    assert "seed 0: trained" in log and "on node" in log
    for seed in (0, 1):
        assert (out / "runs" / "corners" / "bc" / f"seed{seed}" / "summary.json").exists()
    assert Path(out / "results.md").read_text().startswith("# Benchmark results")
