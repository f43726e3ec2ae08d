"""Test-wide guards: no network, and a scratch working directory (mujoco writes MUJOCO_LOG.TXT)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import pytest

_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
    """One JAX compilation cache for the whole run, shared by the xdist workers and the
    subprocesses tests start (they inherit the environment): many files compile the same tiny
    programs, and a cache hit skips XLA. Made by the process that starts the run (the workers
    find it set, and JAX reads it when first imported, after this hook) and removed when that
    process ends; a user's own cache setting is left alone."""
    if hasattr(config, "workerinput") or _CACHE_ENV in os.environ:
        return
    config._diffrl_jax_cache = tempfile.mkdtemp(prefix="diffrl-tests-jax-cache-")
    os.environ[_CACHE_ENV] = config._diffrl_jax_cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the suite's are all small
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


def pytest_unconfigure(config):
    cache = getattr(config, "_diffrl_jax_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
        return _real_connect(self, address)
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    raise RuntimeError(f"tests must not use the network (tried to connect to {address!r})")


@pytest.fixture(autouse=True)
def _no_network_and_scratch_cwd(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """Two finished tiny bench jobs and one that fails on its dataset, run in-process; session
    scope so that the bench's job tests and report tests share one training."""
    from runhelpers import tiny_bench_jobs

    from diffrl import bench

    out = tmp_path_factory.mktemp("bench")
    jobs = tiny_bench_jobs(["bandit:corners"], seeds=(0, 1)) + tiny_bench_jobs(["missing.npz"])
    statuses = [bench.run_job(job, str(out)) for job in jobs]
    return out, jobs, statuses


@pytest.fixture(scope="module")
def fast_compiles():
    """Compile without most XLA optimisations in a module (half the compile time; its programs
    are tiny) and restore the setting afterwards. A module opts in with
    `pytestmark = pytest.mark.usefixtures("fast_compiles")`."""
    import jax

    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture(scope="module")
def batch(request):
    """A batch of 16 random transitions for the module's `SPEC` (modules may define their own)."""
    from runhelpers import random_batch

    return random_batch(request.module.SPEC, 1, 16)


@pytest.fixture(scope="module")
def trained(request, batch):
    """The module's `AGENT` with config `CFG`: the initial state and (state, metrics) after one
    and after two updates, in one compilation."""
    from runhelpers import init_and_two_updates

    module = request.module
    return init_and_two_updates(module.AGENT, module.CFG, module.SPEC, batch)
