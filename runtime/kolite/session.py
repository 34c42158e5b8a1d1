"""OnnxModel: one onnxruntime session with kolite's defaults, run on numpy (CPU) or with IO binding (CUDA)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kolite.cpu_budget import cpu_budget
from kolite.errors import KoliteError
from kolite.graph_bytes import external_tensors
from kolite.graph_facts import read_graph_facts
from kolite.providers import DeviceSpec, check_session_providers, cpu_device

__all__ = [
    "CPU_DISABLED_OPTIMIZERS",
    "ONE_THREAD_MAX_MACS",
    "ONE_THREAD_MAX_WEIGHTS",
    "SPINNING_ENTRY",
    "OnnxModel",
    "build_session_options",
    "cpu_session",
    "default_threads",
    "disabled_optimizers",
    "open_session",
]

# onnxruntime's CPU kernels for these fused ops are slower than the ops they replace (ORT 1.31, measured with
# ``python -m kolite_bench.profile_ops``: SkipLayerNormalization ≈ 1.1 ms vs Add + LayerNormalization ≈ 0.27 ms,
# BiasGelu ≈ 1.0 ms vs Gelu ≈ 0.56 ms with the bias folded into the int8 MatMul, per call at batch 32). So on CPU
# the session never creates them; graphs exported with them baked in still run them (see benchmarks/results/levers.md).
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion", "BiasGeluFusion")
# The session config entry that lets idle intra-op threads spin ("1", onnxruntime's default) or sleep ("0").
SPINNING_ENTRY = "session.intra_op.allow_spinning"
# A single call this small runs faster on one intra-op thread than on two: each of a small encoder's ~170 ops is
# too short to split, and every split pays a barrier (int8-static 000 on the 2-vCPU Xeon, one text, 1 vs 2 threads:
# 1.07-1.13x faster at 3-32 tokens, even at 40, 0.93x at 64, 0.69x at 128). The budget is rows x tokens x the
# graph's dense weights (multiply-accumulates, kolite.graph_facts): 320M is 33 tokens of KoELECTRA-small. A
# base-size encoder (85M weights) is 1.5x slower on one thread even at 3 tokens (reading its weights is the work),
# so only graphs of at most 32M dense weights qualify at all.
ONE_THREAD_MAX_MACS = 320_000_000
ONE_THREAD_MAX_WEIGHTS = 32_000_000


def default_threads() -> int:
    """Threads kolite uses unless told: physical cores, affinity mask and cgroup CPU quota, whichever is smallest
    (see ``kolite.cpu_budget``)."""
    return cpu_budget().threads


def build_session_options(threads: int | None = None, overrides: Any = None) -> Any:
    """Defaults: intra-op threads = ``default_threads()``, 1 inter-op thread, full graph optimisation, CPU memory
    arena on, memory-pattern planning off (batch shapes change with every length bucket, so plans would not be reused).

    ``overrides`` is an ``onnxruntime.SessionOptions`` (used as is) or a mapping of SessionOptions attributes
    (``{"graph_optimization_level": "ORT_ENABLE_EXTENDED", "enable_mem_pattern": True}``); dotted keys are
    session config entries (``{"session.intra_op.allow_spinning": "0"}``: idle threads sleep instead of spinning,
    which matters when the cores are shared; see benchmarks/results/levers.md).
    """
    import onnxruntime as ort

    if isinstance(overrides, ort.SessionOptions):
        if threads is not None:
            overrides.intra_op_num_threads = threads
        return overrides
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    options.log_severity_level = 3  # errors only; kolite raises its own clear errors
    for name, value in (overrides or {}).items():
        if "." in name:
            options.add_session_config_entry(name, str(value))
            continue
        if not hasattr(options, name):
            raise KoliteError(f"session_options: onnxruntime.SessionOptions has no attribute {name!r}")
        if name == "graph_optimization_level" and isinstance(value, str):
            value = getattr(ort.GraphOptimizationLevel, value)
        elif name == "execution_mode" and isinstance(value, str):
            value = getattr(ort.ExecutionMode, value)
        setattr(options, name, value)
    return options


def disabled_optimizers(device: DeviceSpec) -> list[str]:
    """The graph optimizers kolite turns off on ``device``."""
    return [] if device.is_cuda else list(CPU_DISABLED_OPTIMIZERS)


def open_session(
    graph: bytes, options: Any, device: DeviceSpec, name: str = "graph", external_data_dir: Path | None = None
) -> Any:
    """The one way kolite opens a graph: from the bytes it was given (the ones that were hashed, never a second
    read of a path), with ``options`` and the device's providers and disabled optimizers. Export's gates, accuracy
    repair and the benchmarks' accuracy passes open their graphs here too, so what they measure is what is served.

    A graph whose tensors live in external data files is refused: from bytes, onnxruntime would look for those
    files in the working directory, unverified (see ``kolite.graph_bytes``). Only export's own scratch graphs
    (accuracy repair's spliced graphs share one weights file) name ``external_data_dir``: they load from there."""
    import onnxruntime as ort

    if not isinstance(graph, (bytes, bytearray)):
        raise TypeError(f"open_session takes the graph's bytes, got {type(graph).__name__}")
    try:
        external = external_tensors(graph)
    except ValueError as exc:
        raise KoliteError(f"onnxruntime could not load {name}: {exc}") from exc
    if external and external_data_dir is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(external_data_dir))
    elif external:
        raise KoliteError(
            f"{name} keeps {len(external)} tensor(s) in external data files (first: {external[0]!r}); kolite runs "
            "only self-contained graphs, whose every byte the manifest's sha256 covers: re-export the artifact"
        )
    try:
        return ort.InferenceSession(
            bytes(graph),
            sess_options=options,
            providers=list(device.providers),
            provider_options=[dict(o) for o in device.provider_options],
            disabled_optimizers=disabled_optimizers(device),
        )
    except Exception as exc:  # onnxruntime raises untyped Fail/InvalidGraph/RuntimeError
        raise KoliteError(f"onnxruntime could not load {name}: {exc}") from exc


def cpu_session(graph: bytes | str | Path, threads: int | None = None) -> Any:
    """A plain onnxruntime CPU session opened exactly as ``kolite.load`` opens it (options, disabled optimizers),
    for code that feeds the graph itself: export's gates and repair trials, the benchmarks' accuracy passes. A
    graph file may keep its weights as external data beside it (export's scratch graphs)."""
    if isinstance(graph, (bytes, bytearray)):
        return open_session(bytes(graph), build_session_options(threads), cpu_device())
    path = Path(graph)
    return open_session(path.read_bytes(), build_session_options(threads), cpu_device(), str(path), path.parent)


class OnnxModel:
    """An onnxruntime session that maps ``{input: int64 array}`` → float32 output array.

    Throughput mode: the calls of one plan (``run_many``) run side by side on ``parallel`` one-thread sessions
    (``kolite.parallel``) instead of one after another on the session's N intra-op threads. Every op of a small
    encoder is too short to split well across threads (each split ends at a barrier); whole batches share nothing.
    A single call keeps the N-thread session, unless it is small enough to run faster on one thread
    (``ONE_THREAD_MAX_MACS``): then it runs on the first one-thread session. The extra sessions are made on first use.

    Every session is built from bytes, never from the path: ``read_graph`` (default: read ``path``) is called once;
    ``kolite.load`` passes a reader that checks size and sha256 on the very bytes it returns. Those bytes are kept
    until the one-thread sessions are made (so they run what was verified too), then dropped.
    """

    def __init__(
        self,
        path: str | Path,
        device: DeviceSpec,
        output: str = "logits",
        threads: int | None = None,
        session_options: Any = None,
        strict_device: bool = True,
        parallel: int | None = None,
        read_graph: Callable[[], bytes] | None = None,
        external_data_dir: Path | None = None,
    ) -> None:
        options = build_session_options(threads, session_options)
        caller_decides = session_options is not None and (
            not isinstance(session_options, Mapping) or "enable_mem_pattern" in session_options
        )
        if device.is_cuda and not caller_decides:
            # On CUDA a batch's shapes repeat (sorted plans), and onnxruntime's per-shape memory plan saves a
            # device allocation per op; on CPU it is off (see build_session_options). See providers.py.
            options.enable_mem_pattern = True
        graph = read_graph() if read_graph is not None else Path(path).read_bytes()
        self._external_data_dir = external_data_dir  # export's scratch graphs only; kolite.load never sets it
        self.session = open_session(graph, options, device, str(path), external_data_dir)
        self.device = check_session_providers(device, self.session.get_providers(), strict_device)
        self.threads = int(options.intra_op_num_threads)
        self.path = Path(path)
        self.parallel = _parallel_sessions(parallel, self.threads, self.device, session_options)
        self._graph: bytes | None = graph if self.parallel >= 2 else None
        self.one_thread_tokens = _one_thread_tokens(graph) if self.parallel >= 2 else 0
        self._overrides = session_options
        self._workers: Any = None
        self._lane: Any = None  # the one-thread session small single calls run on (worker 0 once workers exist)
        self._lane_opener: threading.Thread | None = None
        self._workers_lock = threading.Lock()
        self.output = output
        self._outputs = [output]
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        # Ids are made as int64; a graph that declares int32 inputs (some exporters' choice, common for GPU graphs)
        # gets them cast once here instead of failing inside onnxruntime.
        self._input_dtypes = {i.name: _INPUT_DTYPES.get(i.type, np.int64) for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if output not in outputs:
            raise KoliteError(f"{path} has no output {output!r} (outputs: {outputs})")

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch. Feeds not in the graph are dropped; graph inputs not fed are zero-filled (token_type_ids)."""
        session = self._open_session()
        inputs = self._inputs(feeds)
        if self.device.is_cuda:
            return self._run_cuda(inputs)
        if inputs["input_ids"].size <= self.one_thread_tokens:
            session = self._one_thread_session() or session
        return _float32(session.run(self._outputs, inputs)[0])

    def run_many(self, batches: Sequence[Mapping[str, np.ndarray]]) -> list[np.ndarray]:
        """Run several batches (one plan's calls), side by side on the one-thread sessions when there are several."""
        if self.parallel < 2 or len(batches) < 2:
            return [self.run(feeds) for feeds in batches]
        workers = self._parallel_sessions()
        return [_float32(output) for output in workers.run([self._inputs(f) for f in batches], self.output)]

    def _open_session(self) -> Any:
        session = self.__dict__.get("session")
        if session is None:
            raise KoliteError("this model was closed; load it again with kolite.load")
        return session

    def _inputs(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {}
        for name in self.input_names:
            value = feeds.get(name)
            value = np.zeros_like(feeds["input_ids"]) if value is None else value
            dtype = self._input_dtypes[name]
            inputs[name] = value if value.dtype == dtype else value.astype(dtype)
        return inputs

    def _parallel_sessions(self) -> Any:
        self._open_session()
        if self._workers is None:
            self.wait_for_one_thread_session()  # adopt it rather than open one more
        with self._workers_lock:
            if self._workers is None:
                from kolite.parallel import ParallelSessions

                assert self._graph is not None
                self._workers = ParallelSessions(
                    self._graph,
                    self.parallel,
                    self._one_thread_options,
                    name=str(self.path),
                    external_data_dir=self._external_data_dir,
                    opened=[self._lane] if self._lane is not None else [],
                )
                self._lane = self._workers.sessions[0]
                self._graph = None
            return self._workers

    def _one_thread_session(self) -> Any | None:
        """Worker 0, or before the workers exist one session of its own (the workers adopt it), or None while that
        session is being opened in the background: no call waits for a session to open (a first call would pay
        ~0.1 s, more than the cold start it follows), and a latency-only process opens one extra session, not
        ``parallel``."""
        lane = self._lane
        if lane is None and self._lane_opener is None:
            with self._workers_lock:
                if self._lane is None and self._lane_opener is None and self._graph is not None:
                    # Not a daemon: a process that exits mid-open would tear onnxruntime down under it (abort).
                    self._lane_opener = threading.Thread(
                        target=self._open_lane, args=(self._graph,), name="kolite-one-thread-session"
                    )
                    self._lane_opener.start()
        return lane

    def _open_lane(self, graph: bytes) -> None:
        try:
            lane = open_session(graph, self._one_thread_options(1), cpu_device(), str(self.path),
                                self._external_data_dir)
        except KoliteError:  # the N-thread session opened the same bytes; should this fail, small calls stay there
            self.one_thread_tokens = 0
            return
        with self._workers_lock:
            if self._lane is None and self._workers is None and "session" in self.__dict__:
                self._lane = lane

    def wait_for_one_thread_session(self, timeout: float | None = None) -> bool:
        """Wait for the background opening of the one-thread session, if one was started; whether it is ready."""
        opener = self._lane_opener
        if opener is not None:
            opener.join(timeout)
        return self._lane is not None

    def _one_thread_options(self, threads: int) -> Any:
        return build_session_options(threads, self._overrides)

    def _run_cuda(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, array in inputs.items():
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", self.device.device_id)
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output, "cuda", self.device.device_id)
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    @property
    def output_shape(self) -> list[int | str | None]:
        """Shape of the output the model returns (symbolic dims are names, e.g. "batch")."""
        output = next(o for o in self.session.get_outputs() if o.name == self.output)
        return list(output.shape)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def close(self) -> None:
        self.__dict__.pop("session", None)
        self._workers = None
        self._lane = None
        self._graph = None


_INPUT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _float32(output: np.ndarray) -> np.ndarray:
    return output if output.dtype == np.float32 else output.astype(np.float32)


def _one_thread_tokens(graph: bytes) -> int:
    """The most padded tokens (rows x columns) a single call may have to run on one thread (0: never)."""
    try:
        weights = read_graph_facts(graph).dense_weights
    except ValueError:  # onnxruntime opened it, so it parses; a graph kolite cannot read keeps N threads
        return 0
    if not 0 < weights <= ONE_THREAD_MAX_WEIGHTS:
        return 0
    return ONE_THREAD_MAX_MACS // weights


def _parallel_sessions(requested: int | None, threads: int, device: DeviceSpec, overrides: Any) -> int:
    """How many one-thread sessions run a plan's calls side by side: by default one per intra-op thread of the
    main session, on CPU, unless the caller passed a ready ``SessionOptions`` object (it cannot be copied for
    one-thread sessions); 0 or 1 turns throughput mode off."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
            raise KoliteError(f"parallel must be a non-negative int (0 or 1: off), got {requested!r}")
        return requested if not device.is_cuda else 1
    if device.is_cuda or (overrides is not None and not isinstance(overrides, Mapping)):
        return 1
    return threads
