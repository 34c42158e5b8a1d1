"""The Ray engine: the local engine's job with its slices labelled by Ray actors across a cluster.

* The driver does what it does locally (:func:`kolite.labeling.driver.drive`): it reads the input — so decoding,
  encodings, cell sizes and bad-row rules are the local engine's —, writes the parts and joins them. Only the
  labelling runs on the cluster: each actor loads the artifact once and labels the slices it is sent, with ONNX
  Runtime intra-op threads = its ``num_cpus`` = ``--threads``. Same bytes as the local engine, same resume.
* Resource plan: only the actors hold CPUs (the driver reads and writes outside Ray's scheduler), so a pool that
  fills the cluster cannot starve a read task (Ray Data's read tasks did: the job waited forever). A plan no node
  can host is refused at once; slices go only to actors that have started.
* Never a silent hang: when no slice finishes (and no actor starts) for ``--stall-timeout`` seconds, the job stops
  with an error that says what the cluster has free. Finished parts are kept: re-running resumes.
* Without ``--address`` the engine starts a new local Ray instance (own temp dir, stopped at the end): it never
  joins a cluster that happens to run on the machine (nor the one RAY_ADDRESS names). Ray >= 2.5x turns token
  authentication on for new instances and writes its token to ``~/.ray/auth_token`` (with a warning); the private
  instance instead gets a token of its own in its temp dir (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH, set only
  while it runs): nothing is written outside the temp dir, no warning, and no other process can join it.
* ``--address`` joins a token-auth cluster with its token given as ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``
  (``ray get-auth-token`` on the head node prints it): Ray itself enables token mode for an explicit address only
  with ``RAY_AUTH_MODE=token``, so kolite sets that while it joins when a token is given and the mode is not.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kolite.errors import KoliteError
from kolite.input_decoding import EncodingChoice
from kolite.labeling.driver import drive
from kolite.labeling.job import LabelJob
from kolite.labeling.parts import JobSpec
from kolite.labeling.predict import Labeler, labeler_settings, load_model
from kolite.labeling.progress import Summary

__all__ = ["connected", "plan_actors", "run_ray"]

ACTOR_RESTARTS = 2  # a dead actor (OOM, lost node) is restarted and its slices retried this many times
TOKEN_HINT = (
    "if the cluster uses token authentication (Ray's default since 2.5x), give this process the cluster's token: "
    "RAY_AUTH_TOKEN_PATH=FILE or RAY_AUTH_TOKEN=TOKEN (`ray get-auth-token` on the head node prints it), or "
    "RAY_AUTH_MODE=token to use ~/.ray/auth_token"
)


def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise KoliteError("--engine ray needs Ray: pip install 'kolite[ray]'") from exc
    return ray


class LabelActor:
    """One model per actor; labels slices of text cells exactly as a local worker process does."""

    def __init__(
        self, model: str, variant: str, device: str, threads: int, labeler: dict[str, Any], guard: bool = False
    ) -> None:
        self.labeler = Labeler(load_model(model, variant, device, threads, guard), **labeler)

    def label(self, values: list[object]) -> dict[str, list[Any]]:
        return self.labeler.label(values)


def _reset_auth_cache() -> None:
    # Ray caches its config and token per process: make it read the environment again (private API, hence guarded).
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        pass


@contextmanager
def _auth_env(values: dict[str, str | None]) -> Iterator[None]:
    """``values`` in this process's environment (None: unset) while the block runs; Ray re-reads them."""
    saved = {name: os.environ.get(name) for name in values}
    _set_env(values)
    try:
        yield
    finally:
        _set_env(saved)


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _reset_auth_cache()


def _join_auth() -> dict[str, str | None]:
    # A token given, the mode not: token mode (Ray enables it by itself only when it finds a cluster on its own).
    given = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    return {"RAY_AUTH_MODE": "token"} if given and "RAY_AUTH_MODE" not in os.environ else {}


@contextmanager
def private_auth(temp_dir: str) -> Iterator[Path]:
    """Token authentication for a private instance, with a new token in ``temp_dir`` (0600): set in this process's
    environment (inherited by the Ray processes it starts) while the block runs, restored afterwards."""
    token = Path(temp_dir) / "auth_token"
    token.touch(mode=0o600)
    token.write_text(secrets.token_hex(32), encoding="ascii")
    with _auth_env({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": None, "RAY_AUTH_TOKEN_PATH": str(token)}):
        yield token


@contextmanager
def connected(ray: Any, address: str | None) -> Iterator[None]:
    """Ray as this job needs it: the caller's if already initialised, the cluster at ``address``, else a new
    local instance (``address="local"``: RAY_ADDRESS and a running ``ray start`` are ignored) in its own temp
    dir. What is started here is stopped here."""
    if ray.is_initialized():
        yield
        return
    if address:
        with _auth_env(_join_auth()):
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
                raise KoliteError(f"cannot join the Ray cluster at {address!r}: {exc}; {TOKEN_HINT}") from exc
            try:
                yield
            finally:
                ray.shutdown()
        return
    # Short path: Ray's socket paths must fit in 107 bytes; /tmp/ray may belong to another user.
    temp_dir = tempfile.mkdtemp(prefix="kolite-ray-", dir="/tmp" if Path("/tmp").is_dir() else None)
    try:
        with private_auth(temp_dir):
            try:
                ray.init(
                    address="local",
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    _temp_dir=temp_dir,
                )
                yield
            finally:
                if ray.is_initialized():
                    ray.shutdown()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _node_cpus(ray: Any) -> list[float]:
    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]


def plan_actors(ray: Any, workers: int | None, threads: int) -> int:
    """How many actors of ``threads`` CPUs to start; refuses a plan that no node can host."""
    nodes = _node_cpus(ray)
    largest = max(nodes, default=0.0)
    if threads > largest:
        raise KoliteError(
            f"--threads {threads}: each actor needs {threads} CPUs but the largest Ray node has {largest:g}; "
            "lower --threads"
        )
    fit = sum(int(cpus // threads) for cpus in nodes)
    actors = workers or fit
    if actors > fit:
        print(
            f"kolite label: {actors} actors x {threads} CPUs do not fit the cluster's {sum(nodes):g} CPUs; "
            f"{fit} start now, the others when CPUs free up",
            file=sys.stderr,
        )
    return actors


class _RayRunner:
    """Sends slices to started actors (the least busy first); collect() waits at most ``stall`` seconds."""

    def __init__(self, ray: Any, job: LabelJob, spec: JobSpec, encoding: EncodingChoice) -> None:
        self.ray = ray
        self.stall = job.stall_timeout
        threads = job.threads or 1
        count = plan_actors(ray, job.workers, threads)
        self.description = f"ray {count}x{threads}"
        settings = labeler_settings(job, encoding.name)
        actor = ray.remote(num_cpus=threads, max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)(
            LabelActor
        )
        self.actors = [
            actor.remote(job.model, spec.variant, job.device, threads, settings, spec.guarded) for _ in range(count)
        ]
        self.starting = {a.__ray_ready__.remote(): a for a in self.actors}
        self.load: dict[Any, int] = {}  # started actor → slices sent and not yet collected
        self.sent: dict[Any, Any] = {}  # slice ref → actor
        self.failures: list[str] = []
        self.slots = count

    def _started(self, timeout: float) -> None:
        if not self.starting:
            return
        ready, _ = self.ray.wait(list(self.starting), num_returns=len(self.starting), timeout=timeout)
        for ref in ready:
            actor = self.starting.pop(ref)
            try:
                self.ray.get(ref)
            except Exception as exc:  # the actor could not start (artifact missing on its node...): say why
                self.failures.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}")
                continue
            self.load[actor] = 0
        if not self.load and not self.starting:
            raise KoliteError(f"no Ray actor could start; the first reason: {self.failures[0]}")

    def _stalled(self, waited: float) -> KoliteError:
        free = self.ray.available_resources().get("CPU", 0.0)
        total = self.ray.cluster_resources().get("CPU", 0.0)
        return KoliteError(
            f"the Ray job made no progress for {waited:.0f} s: {len(self.load)} of {len(self.actors)} actors "
            f"started, the cluster has {free:g} of {total:g} CPUs free (held by another job? see `ray status`). "
            "Finished parts are kept: re-run the same command to resume (--stall-timeout waits longer)"
        )

    def submit(self, values: list[object]) -> Any:
        started = time.monotonic()
        self._started(timeout=0)
        while not self.load:
            self._started(timeout=min(5.0, self.stall))
            if not self.load and time.monotonic() - started >= self.stall:
                raise self._stalled(time.monotonic() - started)
        actor = min(self.load, key=self.load.__getitem__)
        ref = actor.label.remote(values)
        self.load[actor] += 1
        self.sent[ref] = actor
        return ref

    def collect(self, ref: Any) -> dict[str, list[Any]]:
        ready, _ = self.ray.wait([ref], timeout=self.stall)
        if not ready:
            raise self._stalled(self.stall)
        actor = self.sent.pop(ref)
        self.load[actor] -= 1
        try:
            return self.ray.get(ref)
        except Exception as exc:  # RayActorError / RayTaskError after Ray's own retries
            reason = str(exc).strip().splitlines()[-1]
            raise KoliteError(
                f"a Ray actor failed ({type(exc).__name__}: {reason}); finished parts are kept: re-run the same "
                "command to resume"
            ) from exc

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def run_ray(job: LabelJob) -> Summary:
    """Label ``job.input`` with Ray actors (a new local Ray instance unless ``job.address`` or one is running)."""
    ray = require_ray()
    started = time.perf_counter()
    if Path(job.model).exists():  # actors run in other working directories (and on other nodes)
        job = dataclasses.replace(job, model=str(Path(job.model).resolve()))
    model = load_model(job.model, job.variant, job.device, 1, job.guard)  # resolves variant, task, guard
    try:
        with connected(ray, job.address):
            return drive(job, model, lambda spec, encoding: _RayRunner(ray, job, spec, encoding), started)
    finally:
        model.close()
