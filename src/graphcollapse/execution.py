"""Where simulations run: process pools, Dask clusters, checkpoint directories, locks.

The simulation engine (``graphcollapse._simulate``) is pure: it runs blocks of
replicates on whatever :class:`concurrent.futures.Executor` it is given and keeps them
in whatever :class:`~graphcollapse._simulate.BlockStore` it is given. This module is
the layer above that builds those:

* :func:`executor` -- a process pool on this machine (``backend="local"``) or a Dask
  cluster (``backend="dask"``: a ``LocalCluster`` of process workers, or an existing
  scheduler). The local pool ignores Ctrl-C in its workers (the parent saves finished
  blocks and stops them), and never hangs: a worker that dies fails the run with
  :class:`WorkerLostError`, and the remaining workers are stopped.
* :class:`DirectoryCheckpoints` -- one ``.npz`` per finished block beside a
  fingerprint of the run; temporary files carry the writer's PID and a random suffix.
* :class:`DirectoryLock` -- one run per directory: a second one is refused at once
  naming the holder's PID (:class:`DirectoryLockedError`), or waits.
* :func:`simulate` -- the public entry point (``graphcollapse.simulate``).

This module imports only the standard library and the core at import time (Dask is
imported when the Dask backend is used).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from concurrent.futures import Executor, ProcessPoolExecutor
# (concurrent.futures with logging, its process pool with multiprocessing, zipfile,
# socket and uuid are imported where used: a run on one worker without checkpoints needs
# none of them, ~0.03 s of start-up.)

import numpy as np

from . import _simulate as _engine
from ._constraints import require_instance
from ._curves import RiskCurves
from ._errors import ConfigError, GraphCollapseError
from ._graph import InteractionGraph
from ._regime import Regime
from ._simulate import BlockResult
from .families import Family

__all__ = [
    "simulate",
    "executor",
    "DirectoryCheckpoints",
    "DirectoryLock",
    "DirectoryLockedError",
    "CheckpointMismatchError",
    "CheckpointLostError",
    "WorkerLostError",
    "BACKENDS",
]

BACKENDS = ("local", "dask")
Backend = Literal["local", "dask"]
LOCK_FILE = ".graphcollapse.lock"
_HELD_LOCKS: set[int] = set()  # lock descriptors this process holds (closed in workers)


# ---------------------------------------------------------------------- errors
class CheckpointMismatchError(ConfigError):
    """A checkpoint directory holds blocks of a run with other settings.

    ``differences`` lists the settings that differ (e.g. ``["seed"]``).

    Examples
    --------
    >>> from pathlib import Path
    >>> str(CheckpointMismatchError(Path("ck"), ["seed"])).split(";")[0]
    "simulate, field 'checkpoint_dir': 'ck' holds blocks of a different run (differs in: seed)"
    """

    def __init__(self, directory: Path, differences: list[str]) -> None:
        self.directory = directory
        self.differences = differences
        super().__init__(
            f"simulate, field 'checkpoint_dir': {str(directory)!r} holds blocks of a "
            f"different run (differs in: {', '.join(differences)}); use another directory "
            "or delete it to start afresh"
        )


class CheckpointLostError(GraphCollapseError):
    """The checkpoint directory vanished or became unwritable during a run.

    Examples
    --------
    >>> issubclass(CheckpointLostError, GraphCollapseError)
    True
    """


class WorkerLostError(GraphCollapseError):
    """A worker process died (killed, out of memory) while running blocks or points.

    Finished work is saved; rerunning the same command resumes.

    Examples
    --------
    >>> issubclass(WorkerLostError, GraphCollapseError)
    True
    """


class DirectoryLockedError(ConfigError):
    """Another run holds the directory's lock.

    ``pid`` is the holder's process id (``None`` if it could not be read).

    Examples
    --------
    >>> err = DirectoryLockedError(Path("out"), 1234, "--out")
    >>> err.pid, "PID 1234" in str(err)
    (1234, True)
    """

    def __init__(self, directory: Path, pid: int | None, what: str) -> None:
        self.directory, self.pid = directory, pid
        holder = f"PID {pid}" if pid is not None else "a process whose PID could not be read"
        super().__init__(
            f"{what} {str(directory)!r} is in use by another graphcollapse run ({holder}); "
            "wait for it to finish (or pass --wait), or use another directory"
        )


# ---------------------------------------------------------------------- the lock
class DirectoryLock:
    """An exclusive lock on a directory (``flock`` on ``DIR/.graphcollapse.lock``).

    Held for the life of the ``with`` block; released by the kernel if the process
    dies, even by ``SIGKILL``. The lock file holds the holder's PID and is removed on
    release.

    Parameters
    ----------
    directory : path
        Created if needed.
    what : str
        How messages name the directory (e.g. ``"--out"``, ``"--store"``).
    wait : bool
        Wait for the holder to finish instead of refusing at once.
    on_wait : callable, optional
        Called once with the holder's PID when the lock is busy and ``wait`` is set.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with DirectoryLock(d, what="--out"):
    ...     try:
    ...         DirectoryLock(d, what="--out").acquire()
    ...     except DirectoryLockedError as err:
    ...         print(err.pid == os.getpid())
    True
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        what: str = "directory",
        wait: bool = False,
        on_wait: Callable[[int | None], Any] | None = None,
        poll: float = 0.2,
    ) -> None:
        self.dir = Path(directory)
        self.path = self.dir / LOCK_FILE
        self.what, self.wait, self.on_wait, self.poll = what, wait, on_wait, poll
        self._fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> DirectoryLock:
        """Take the lock (or raise :class:`DirectoryLockedError`)."""
        import fcntl

        # Directories this lock creates are removed again on release if left empty (a
        # run refused after taking the lock leaves nothing behind).
        self._created = []
        d = self.dir.absolute()
        while not d.exists() and d != d.parent:
            self._created.append(d)
            d = d.parent
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"{self.what} {str(self.dir)!r}: cannot create it ({err})") from None
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                if not self.wait:
                    raise DirectoryLockedError(self.dir, pid, self.what) from None
                if not told and self.on_wait is not None:
                    self.on_wait(pid)
                told = True
                time.sleep(self.poll)
                continue
            # The holder may have removed the file between our open and our flock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            import socket

            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self._fd = fd
            _HELD_LOCKS.add(fd)
            return self

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        _HELD_LOCKS.discard(self._fd)
        os.close(self._fd)  # (closing releases the flock)
        self._fd = None
        for d in self._created:  # innermost first; only if empty
            try:
                d.rmdir()
            except OSError:
                break

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    # The holder writes its PID right after taking the lock: retry briefly.
    for _ in range(10):
        try:
            text = os.pread(fd, 200, 0).decode(errors="replace").split()
        except OSError:
            return None
        if text and text[0].isdigit():
            return int(text[0])
        time.sleep(0.02)
    return None


# ---------------------------------------------------------------------- checkpoints
def unique_tmp(path: Path) -> Path:
    """A temporary name beside ``path`` no other writer can share (PID + random).

    >>> unique_tmp(Path("d/block_000001.npz")).name.startswith(".block_000001.npz.")
    True
    """
    import uuid

    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


class DirectoryCheckpoints:
    """A :class:`~graphcollapse._simulate.BlockStore`: one ``.npz`` per finished block.

    The directory holds ``fingerprint.json`` (the run's settings: a directory of
    another run is refused with :class:`CheckpointMismatchError`) and
    ``block_NNNNNN.npz`` files, each written under a unique temporary name and renamed
    into place. A damaged block file is recomputed. The caller should hold a
    :class:`DirectoryLock` (as :func:`simulate` does).

    Examples
    --------
    >>> import tempfile, graphcollapse as gc
    >>> d = Path(tempfile.mkdtemp())
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> a = gc.simulate(g, gc.LinearRegression(dim=2), generations=1, replicates=300,
    ...                 seed=0, checkpoint_dir=d)
    >>> sorted(p.name for p in d.iterdir())
    ['block_000000.npz', 'block_000001.npz', 'fingerprint.json']
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)

    def open(self, fingerprint: dict[str, Any]) -> Collection[int]:
        """Check or write the fingerprint; clear stale temporary files; list blocks."""
        fp_file = self.dir / "fingerprint.json"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"simulate, field 'checkpoint_dir': cannot create {str(self.dir)!r} ({err})"
            ) from None
        if fp_file.exists():
            try:
                old = json.loads(fp_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if old != fingerprint:
                if isinstance(old, dict):
                    keys = sorted(set(old) | set(fingerprint))
                    diff = [k for k in keys if old.get(k) != fingerprint.get(k)]
                else:
                    diff = ["unreadable fingerprint.json"]
                raise CheckpointMismatchError(self.dir, diff)
        else:
            _atomic_write(fp_file, (json.dumps(fingerprint, indent=1) + "\n").encode())
        for stale in self.dir.glob(".*.tmp"):  # left by a killed run (we hold the lock)
            with contextlib.suppress(OSError):
                stale.unlink()
        out = []
        for p in self.dir.glob("block_*.npz"):
            stem = p.name[len("block_") : -len(".npz")]
            if stem.isdigit():
                out.append(int(stem))
        return sorted(out)

    def path(self, b: int) -> Path:
        """The file of block ``b``."""
        return self.dir / f"block_{b:06d}.npz"

    def load(self, block: int, count: int, n_models: int) -> BlockResult | None:
        """Block ``block`` if it is there, undamaged and of ``count`` replicates."""
        import zipfile

        p = self.path(block)
        try:
            with np.load(p, allow_pickle=False) as z:
                if int(z["count"]) != count:
                    return None
                return BlockResult.from_arrays(block, {k: z[k] for k in z.files}, n_models)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None  # missing or damaged: simply recomputed

    def save(self, result: BlockResult) -> None:
        """Write one block (unique temporary name, then rename)."""
        p = self.path(result.block)
        tmp = unique_tmp(p)
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **result.to_arrays())
            os.replace(tmp, p)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CheckpointLostError(
                f"simulate, field 'checkpoint_dir': cannot save block {result.block} in "
                f"{str(self.dir)!r} ({err.strerror or err}); was the directory removed while "
                "the run was going? Finished blocks saved before are kept; rerun to resume"
            ) from None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = unique_tmp(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- executors
def _settings_env() -> dict[str, str]:
    """The parent's ``GRAPHCOLLAPSE_*`` settings, handed to every worker at start (a
    worker started by ``forkserver`` would otherwise see the environment of the moment
    the fork server started, not of this run)."""
    return {k: v for k, v in os.environ.items() if k.startswith("GRAPHCOLLAPSE_")}


def _worker_init(parent: int, env: dict[str, str] | None = None) -> None:  # pragma: no cover
    if env is not None:
        for k in [k for k in os.environ if k.startswith("GRAPHCOLLAPSE_")]:
            del os.environ[k]
        os.environ.update(env)
    # A forked worker must not keep its parent's directory locks alive.
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()
    # The parent handles Ctrl-C (it saves finished work and stops the pool) ...
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # ... and a worker whose parent died (SIGKILL) exits instead of lingering.
    def watch() -> None:
        while True:
            time.sleep(0.5)
            if not _alive(parent):
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[Executor]:
    """A process pool that stops its workers on any error and never hangs.

    A worker that dies turns into :class:`WorkerLostError` (the run fails, finished
    work is kept). On an exception or interrupt the workers are terminated, not waited
    for.

    Examples
    --------
    >>> with process_pool(2) as pool:
    ...     pool.submit(pow, 2, 10).result()
    1024
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_start_context(),
        initializer=_worker_init,
        initargs=(os.getpid(), _settings_env()),
    )
    try:
        yield pool
    except BrokenProcessPool as err:
        _stop(pool)
        raise WorkerLostError(
            "a worker process died (killed, or out of memory?) while running; finished "
            "work is saved: rerun the same command to resume"
        ) from err
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _start_context() -> Any:
    """How worker processes start: ``fork`` from a single-threaded parent (fast, and a
    user's script needs no ``if __name__ == "__main__"`` guard), ``forkserver`` when the
    parent runs other threads (a Dask client, a web server, ...) and its main module is
    safe to re-import: a forked child inherits every lock those threads held at that
    instant and can deadlock on one."""
    import multiprocessing as mp
    import sys

    main = sys.modules.get("__main__")
    # forkserver re-imports a main *file* in each worker: safe for `python -m ...`
    # (pytest, graphcollapse) and `-c`/interactive sessions, not for an unguarded script.
    main_safe = getattr(main, "__file__", None) is None or getattr(main, "__spec__", None)
    if threading.active_count() > 1 and main_safe and "forkserver" in mp.get_all_start_methods():
        return mp.get_context("forkserver")
    return mp.get_context("fork")


def _stop(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1)


SCHEDULER_TIMEOUT = 5.0
"""Seconds to wait for a Dask scheduler to answer before giving up."""


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Refuse (:class:`ConfigError`, one line) a ``tcp://host:port`` scheduler address
    nothing listens at, within ``timeout`` seconds, before anything is started or
    written (other protocols are left to Dask).

    >>> check_scheduler("tcp://127.0.0.1:1")
    Traceback (most recent call last):
    ...
    graphcollapse._errors.ConfigError: --scheduler 'tcp://127.0.0.1:1': cannot connect ...
    """
    text = str(address)
    where = text[len("tcp://") :] if text.startswith("tcp://") else text
    if "://" in where:
        return
    host, _, port = where.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigError(f"--scheduler {text[:80]!r}: expected an address such as tcp://host:8786")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if isinstance(err, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise ConfigError(
            f"--scheduler {text[:80]!r}: cannot connect ({reason}); is the scheduler "
            "running and reachable from here?"
        ) from None


DASK_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask settings for the worker processes of a ``LocalCluster`` we start: Dask's nanny
sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker, which makes glibc hand freed
memory back to the system at once, so the simulation's short-lived arrays page-fault
again every generation (measured: 1.3-1.4x slower per point than the same process
without it). Unset, glibc's default (adaptive) threshold applies. Memory stays bounded:
a simulation keeps its reductions only (docs/sweeps.md says how to set the same on a
cluster you start yourself). A value already in this process's environment is kept
(Dask copies the environment into its workers; note that starting another Dask cluster
in the same process first sets it there)."""


@contextlib.contextmanager
def dask_pool(workers: int, scheduler: str | None = None) -> Iterator[tuple[Executor, int]]:
    """A Dask executor: a new ``LocalCluster`` of ``workers`` process workers, or the
    cluster at ``scheduler`` (``tcp://host:8786``). Yields ``(executor, n_workers)``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "backend 'dask': dask.distributed is not installed; "
            "pip install 'dask[distributed]' or use --backend local"
        ) from None
    cluster = None
    try:
        if scheduler is None:
            import dask

            with dask.config.set(DASK_WORKER_CONFIG):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                )
            client = Client(cluster)
        else:
            check_scheduler(scheduler)
            try:
                client = Client(scheduler, timeout="20s")
            except Exception as err:  # (something answered, but not a Dask scheduler)
                reason = " ".join(str(err).split())[:120] or type(err).__name__
                raise ConfigError(
                    f"--scheduler {scheduler!r}: cannot connect ({reason}); is the scheduler "
                    "running and reachable from here?"
                ) from None
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        n = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        yield client.get_executor(pure=False), max(1, n)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def executor(
    backend: Backend = "local", workers: int = 1, scheduler: str | None = None
) -> Iterator[tuple[Executor | None, int]]:
    """The executor of a backend and its worker count: ``(None, 1)`` for one local
    worker (run here), a :func:`process_pool` for several, a Dask client executor for
    ``"dask"``.

    Examples
    --------
    >>> with executor("local", 1) as (ex, n):
    ...     ex, n
    (None, 1)
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ConfigError("--scheduler: only with --backend dask")
    if backend == "dask":
        with dask_pool(workers, scheduler) as (ex, n):
            yield ex, n
    elif workers == 1:
        yield None, 1
    else:
        with process_pool(workers) as pool:
            yield pool, workers


# ---------------------------------------------------------------------- entry point
def simulate(
    graph: InteractionGraph,
    family: Family,
    *,
    generations: int,
    replicates: int,
    seed: int,
    regime: Regime = Regime(),  # noqa: B008 - immutable
    path: _engine.PathName = "auto",
    keep_replicates: bool = False,
    keep_params: bool = False,
    workers: int = 1,
    progress: Callable[[int, int], Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    chunk_blocks: int | None = None,
    backend: Backend = "local",
    scheduler: str | None = None,
    wait_for_lock: bool = False,
    homogenization: bool | int = False,
) -> RiskCurves:
    """Simulate the retraining loop of an interaction graph with Monte Carlo replicates.

    Generation 0 fits every model on its ``initial_real`` real samples; at each later
    generation every model is refit on its real samples and on samples drawn from its
    producers' previous fits, as the regime says (docs/theory.md §1).

    Parameters
    ----------
    graph : InteractionGraph
        Who trains on whom, and how much.
    family : Family
        The model family (e.g. :class:`LinearRegression`); ``family.check_graph(graph)``
        is called first, so too few samples per model is refused up front.
    generations : int
        Number of retraining generations ``T`` (the result has ``T + 1`` rows).
    replicates : int
        Number of independent Monte Carlo replicates (>= 2).
    seed : int
        Root seed (>= 0). The numbers depend only on the seed and the settings, never on
        ``workers``, ``backend``, ``chunk_blocks`` or on resuming from checkpoints.
    regime : Regime
        Data regime (replace/accumulate, fresh/reused real, private/shared synthetic).
    path : {"auto", "plain", "fast"}
        ``plain`` draws raw samples; ``fast`` uses the family's exact fast sampler
        (same distribution, e.g. a Wishart draw of the Gram matrix); ``auto`` = ``fast``
        when the family has one.
    keep_replicates : bool
        Keep every replicate's risk in ``result.samples`` (shape ``(R, T+1, K)``): what
        :meth:`RiskCurves.quantile` (and the CLI's medians) need. Memory ``8 R (T+1) K``
        bytes.
    keep_params : bool
        Keep every replicate's last-generation fits in ``result.params`` (a tuple, one
        array per model, replicate axis first). Memory ``R x K x`` the parameters' size.

        Without these two the result holds only the statistics reduced over
        replicates (means, standard errors, summaries, non-converged counts): blocks
        are reduced as they finish, so memory does not grow with ``replicates``, and
        checkpointed blocks hold the same reductions. A resumed run that asks for
        ``keep_params`` recomputes the blocks saved without them (same numbers).
    workers : int
        Processes to spread blocks over (``1`` = in this process; with
        ``backend="dask"`` and no scheduler, the size of the ``LocalCluster``). The
        family is sent to the workers by pickling, so its class must be importable (not
        defined inside a function).
    progress : callable, optional
        Called as ``progress(done_blocks, total_blocks)`` at the start and whenever a
        block finishes (after it is checkpointed).
    checkpoint_dir : path, optional
        Save each finished block there; a rerun with the same settings resumes and
        skips finished blocks. A directory holding another run's blocks is refused; a
        directory another run is using is refused at once naming its PID
        (:class:`DirectoryLockedError`), or waited for with ``wait_for_lock=True``.
    chunk_blocks : int, optional
        Blocks per task handed to a worker (default 1: each block is saved and counted
        as soon as it finishes).
    backend : {"local", "dask"}
        ``local``: a process pool on this machine. ``dask``: ``dask.distributed``,
        a ``LocalCluster`` of ``workers`` process workers, or the existing cluster at
        ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``), with ``backend="dask"``.
    wait_for_lock : bool
        Wait for another run using ``checkpoint_dir`` instead of refusing.
    homogenization : bool or int
        Also estimate, from the same replicates, the models' error cross-covariance,
        cross-model correlation and homogenisation indices with their standard errors
        (``result.homogenization``, a :class:`graphcollapse.theory.Homogenization`;
        docs/theory.md §10). A streamed reduction beside the risks': each block adds
        the mean and spread of its cross products ``e_i . e_j`` per pair of models and
        generation (``M (M + 1) / 2`` numbers each), so memory does not grow with
        ``replicates`` and the numbers do not depend on ``workers`` or resuming. Every
        pair up to 2,000 models; above, every pair of a sample of 200 models drawn
        from ``seed`` (:func:`graphcollapse.theory.sample_models`), the indices then
        estimates for the whole ecosystem with their sampling errors; an integer ``m``
        asks for a sample of ``m`` models. No number of the risks changes.

    Returns
    -------
    RiskCurves
        ``mean`` and ``sem`` of the risk per generation and model, family summaries
        (means and sems), ``params`` (with ``keep_params``: a tuple with each model's
        last-generation fits, replicate axis first; else ``None``), ``samples`` (with
        ``keep_replicates``; else ``None``), ``homogenization`` (with
        ``homogenization=True``; else ``None``) and ``info`` (seed, block size, path,
        regime, family, the family's ``degeneracy`` declaration read by
        :func:`drift_signal`, timings).

    Examples
    --------
    One self-consuming OLS model: ``R^(t) = (t + 1) sigma^2 d / (n - d - 1)`` (docs/theory.md §3.1),
    here ``(t + 1) * 2 / 7``.

    >>> import graphcollapse as gc
    >>> g = gc.InteractionGraph(["A"], [[10]], real=[0])
    >>> res = gc.simulate(g, gc.LinearRegression(dim=2), generations=3,
    ...                   replicates=20_000, seed=0)
    >>> import numpy as np
    >>> exact = (np.arange(4) + 1) * 2 / 7
    >>> bool(np.all(np.abs(res.mean[:, 0] - exact) < 4 * res.sem[:, 0]))  # within 4 s.e.
    True
    >>> res.info["path"], res.params is None
    ('fast', True)
    >>> gc.simulate(g, gc.LinearRegression(dim=2), generations=3, replicates=300, seed=0,
    ...             keep_params=True).params[0].shape   # last fits, one row per replicate
    (300, 2)
    """
    workers = _engine._check_int(workers, "workers", 1)
    if progress is not None and not callable(progress):
        raise ConfigError(
            "simulate, field 'progress': expected a function progress(done, total) or None, "
            f"got {type(progress).__name__}"
        )
    if checkpoint_dir is not None:
        require_instance(
            "simulate", "checkpoint_dir", checkpoint_dir, (str, os.PathLike), "a folder path"
        )
    kwargs = dict(
        generations=generations,
        replicates=replicates,
        seed=seed,
        regime=regime,
        path=path,
        keep_replicates=keep_replicates,
        keep_params=keep_params,
        progress=progress,
        chunk_blocks=chunk_blocks,
        homogenization=homogenization,
    )
    with contextlib.ExitStack() as stack:
        store = None
        if checkpoint_dir is not None:
            stack.enter_context(
                DirectoryLock(checkpoint_dir, what="checkpoint_dir", wait=wait_for_lock)
            )
            store = DirectoryCheckpoints(checkpoint_dir)
        n_blocks = _blocks_needed(replicates)
        # One block (or one worker) runs here: no pool to start.
        local_serial = backend == "local" and (workers == 1 or n_blocks <= 1)
        if local_serial:
            res = _engine.simulate(graph, family, checkpoints=store, **kwargs)
        else:
            _check_before_start(graph, family, workers, kwargs)
            ex, n = stack.enter_context(executor(backend, workers, scheduler))
            res = _engine.simulate(
                graph, family, executor=ex, parallelism=n, checkpoints=store, **kwargs
            )
        res.info["workers"] = workers
        res.info["backend"] = backend
        return res


def _check_before_start(graph: Any, family: Any, workers: int, kw: dict[str, Any]) -> None:
    """Refuse bad arguments, and a run over the memory or time limit, before a pool or
    a cluster starts: the engine's own guards (:func:`graphcollapse._simulate.check_arguments`,
    which the engine runs again: the probe is cached)."""
    args = {k: v for k, v in kw.items() if k != "progress"}
    _engine.check_arguments(graph, family, parallelism=workers, **args)


def _blocks_needed(replicates: Any) -> int:
    try:
        return math.ceil(int(replicates) / _engine.BLOCK_SIZE)
    except (TypeError, ValueError, OverflowError):
        return 0  # (the engine names the bad value)
