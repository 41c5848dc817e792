"""Per-step cost of CutMix and MixUp: lightning-mix against torchvision, timm and kornia, and a warm copy.

Every candidate does what a training step pays for: draw the parameters, mix the images and build the targets
(kornia returns its ``(y, y_partner, λ)`` label triples instead of dense targets). All candidates run in one
process, on copies of the same batch, interleaved round-robin in a shuffled order, and the table reports medians.
The warm copy ``out.copy_(x)`` into a preallocated tensor is the floor every ratio refers to.

Memory is the peak of what a fresh candidate allocates over a few steps, one-time buffers (a workspace)
included and its copy of the batch excluded: on CPU from torch's allocation events recorded by the profiler
(``profile_memory=True``), on CUDA from ``torch.cuda.max_memory_allocated``. Host reads are the aten ops that read
a tensor's value on the host, counted with ``tests/sync_guard.py``; on CUDA the script also counts the syncs
``torch.cuda.set_sync_debug_mode`` reports. Minor page faults per step show which candidates allocate fresh
batch-sized memory every step: on CPU their first touch costs one fault per 4 KiB page, a cost that varies a lot
between machines and runs (virtual machines especially).

Run ``python bench/bench_kernels.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import itertools
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
MIXUP_ALPHA, CUTMIX_ALPHA = 0.8, 1.0
METHODS = ("cutmix", "mixup", "both")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "uint8": torch.uint8}
Step = Callable[[], Any]


@dataclass(frozen=True)
class Case:
    """One candidate: ``make(x, y, classes)`` returns the step function, closed over its own copy of the batch."""

    library: str
    method: str
    mode: str
    make: Callable[[torch.Tensor, torch.Tensor, int], Step]

    @property
    def name(self) -> str:
        return f"{self.library} {self.method} {self.mode}".strip()


def _alphas(method: str) -> tuple[float, float]:
    return (MIXUP_ALPHA if method != "cutmix" else 0.0), (CUTMIX_ALPHA if method != "mixup" else 0.0)


def _copy(x: torch.Tensor, y: torch.Tensor, classes: int) -> Step:
    out = torch.empty_like(x)
    return lambda: out.copy_(x)


def _ours(method: str, mode: str, pairing: str) -> Callable[[torch.Tensor, torch.Tensor, int], Step]:
    from lightning_mix.functional import Workspace, mix_, mix_target, sample_mix_params

    mixup_alpha, cutmix_alpha = _alphas(method)

    def make(x: torch.Tensor, y: torch.Tensor, classes: int) -> Step:
        x, workspace = x.clone(), Workspace()
        # as MixCallback draws: a per-batch draw on the host, per-sample draws on the device
        generator = random.Random(0) if mode == "batch" else torch.Generator(device=x.device).manual_seed(0)
        cut_sizes = tuple(x.shape[-2:]) if cutmix_alpha > 0 else ()

        def step() -> torch.Tensor:
            params = sample_mix_params(
                x.shape[0],
                cut_sizes,
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                mode=mode,  # type: ignore[arg-type]
                pairing=pairing,  # type: ignore[arg-type]
                generator=generator,
            )
            mix_(x, params, workspace=workspace)
            return mix_target(y, params, num_classes=classes, validate_args=False)

        return step

    return make


class HookStep:
    """One call of ``MixCallback.on_train_batch_start`` as Lightning makes it, with the time spent in ``mix_``.

    ``kernel`` and ``total`` collect, per call, the seconds inside the mixing kernel and in the whole hook; their
    difference is the hook's overhead: drawing the parameters, building the targets and the callback's own work.
    """

    kernel_time = 0.0  # seconds in ``mix_`` during the current call

    def __init__(self, method: str, mode: str, x: torch.Tensor, y: torch.Tensor, classes: int) -> None:
        import lightning as L

        from lightning_mix import MixCallback

        time_kernel()
        mixup_alpha, cutmix_alpha = _alphas(method)
        self.callback = MixCallback(
            mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, mode=mode, pairing="adjacent", num_classes=classes
        )
        self.trainer = L.Trainer(
            callbacks=[self.callback], logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        self.trainer.training = True  # inside trainer.fit(), Lightning sets this and calls the hook
        self.module = L.LightningModule()
        self.pool, self.y = [x.clone()], y  # the batch tensor, handed over at each call (see __call__)
        self.kernel: list[float] = []
        self.total: list[float] = []

    def __call__(self) -> Any:
        # Only the batch list refers to the input during the hook, as with a fresh batch from a DataLoader: the
        # callback mixes it in place (a tensor someone else holds would be mixed in a copy).
        batch = [self.pool.pop(), self.y]
        HookStep.kernel_time = 0.0
        start = time.perf_counter()
        self.callback.on_train_batch_start(self.trainer, self.module, batch, 0)
        self.total.append(time.perf_counter() - start)
        self.kernel.append(HookStep.kernel_time)
        self.pool.append(batch[0])
        return batch[1]


def time_kernel() -> None:
    """Make ``MixCallback`` call ``mix_`` through a wrapper that adds its wall time to ``HookStep.kernel_time``."""
    import lightning_mix.callback as callback_module

    if not hasattr(callback_module.mix_, "timed"):
        callback_module.mix_ = _timed(callback_module.mix_)  # type: ignore[assignment]


def _timed(kernel: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return kernel(*args, **kwargs)
        finally:
            HookStep.kernel_time += time.perf_counter() - start

    timed.timed = True  # type: ignore[attr-defined]
    return timed


def _hook(method: str, mode: str) -> Callable[[torch.Tensor, torch.Tensor, int], Step]:
    return lambda x, y, classes: HookStep(method, mode, x, y, classes)


def _torchvision(method: str) -> Callable[[torch.Tensor, torch.Tensor, int], Step]:
    from torchvision.transforms import v2

    def make(x: torch.Tensor, y: torch.Tensor, classes: int) -> Step:
        cutmix = v2.CutMix(alpha=CUTMIX_ALPHA, num_classes=classes)
        mixup = v2.MixUp(alpha=MIXUP_ALPHA, num_classes=classes)
        transform = {"cutmix": cutmix, "mixup": mixup, "both": v2.RandomChoice([cutmix, mixup])}[method]
        x = x.clone()
        return lambda: transform(x, y)  # returns a new batch: the input is left as it is

    return make


def _timm(method: str, mode: str) -> Callable[[torch.Tensor, torch.Tensor, int], Step]:
    from timm.data.mixup import Mixup

    mixup_alpha, cutmix_alpha = _alphas(method)

    def make(x: torch.Tensor, y: torch.Tensor, classes: int) -> Step:
        mixer = Mixup(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            mode=mode,
            label_smoothing=0.0,
            num_classes=classes,
        )
        x = x.clone()
        return lambda: mixer(x, y)  # in place

    return make


def _kornia(method: str, mode: str) -> Callable[[torch.Tensor, torch.Tensor, int], Step]:
    import kornia.augmentation as K

    def make(x: torch.Tensor, y: torch.Tensor, classes: int) -> Step:
        kwargs: dict[str, Any] = {"same_on_batch": mode == "batch", "data_keys": ["input", "class"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            aug = K.RandomCutMixV2(**kwargs) if method == "cutmix" else K.RandomMixUpV2(**kwargs)
        x = x.clone()
        return lambda: aug(x, y)

    return make


def build_cases(methods: list[str], libraries: list[str]) -> list[Case]:
    cases = [Case("copy", "", "", _copy)]
    for method in methods:
        if "ours" in libraries:
            for mode in ("batch", "elem"):  # "adj": adjacent pairing, what MixCallback uses with a shuffling loader
                cases.append(Case("ours", method, mode, _ours(method, mode, "random")))
                cases.append(Case("ours", method, f"{mode} adj", _ours(method, mode, "adjacent")))
        if "hook" in libraries:  # the callback's whole hook, adjacent pairs as with a shuffling loader
            cases += [Case("hook", method, f"{mode} adj", _hook(method, mode)) for mode in ("batch", "elem")]
        if "torchvision" in libraries:
            cases.append(Case("torchvision", method, "batch", _torchvision(method)))
        if "timm" in libraries:
            cases += [Case("timm", method, mode, _timm(method, mode)) for mode in ("batch", "pair", "elem")]
        if "kornia" in libraries and method != "both":  # kornia has no combined CutMix/MixUp
            cases += [Case("kornia", method, mode, _kornia(method, mode)) for mode in ("batch", "elem")]
    return cases


def num_classes(shape: tuple[int, ...]) -> int:
    """ImageNet's 1000 classes for large images, CIFAR-100's 100 for small ones."""
    return 1000 if shape[-1] >= 128 else 100


def make_batch(shape: tuple[int, ...], dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    x = (x * 255).round_().to(dtype) if dtype == torch.uint8 else x.to(dtype)
    y = torch.randint(num_classes(shape), (shape[0],), generator=g)
    return x.to(device), y.to(device)


# ------------------------------------------------------------------------------------------------- timing
def _timer(device: str) -> Callable[[Step], float]:
    if device.startswith("cuda"):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def cuda_time(step: Step) -> float:
            torch.cuda.synchronize()
            start.record()
            step()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3

        return cuda_time

    def cpu_time(step: Step) -> float:
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0

    return cpu_time


def time_steps(
    steps: dict[str, Step], *, rounds: int, inner: int, warmup: int, device: str
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Time every step ``rounds * inner`` times, round-robin in a shuffled order so load drifts hit all alike.

    A step that raises (an anchor that fails on some draws only) is dropped and its error returned.
    """
    timer, order = _timer(device), list(steps)
    times: dict[str, list[float]] = {name: [] for name in steps}
    errors: dict[str, str] = {}

    def run(name: str, count: int, timed: bool) -> None:
        try:
            for _ in range(count):
                if timed:
                    times[name].append(timer(steps[name]))
                else:
                    steps[name]()
        except Exception as error:
            errors[name] = describe(error)
            order.remove(name)

    for name in list(order):
        run(name, warmup, timed=False)
    shuffle = random.Random(0)
    for _ in range(rounds):
        shuffle.shuffle(order)
        gc.collect()
        gc.disable()
        try:
            for name in list(order):
                run(name, inner, timed=True)
        finally:
            gc.enable()
    return times, errors


def iqr(values: list[float]) -> float:
    """The interquartile range; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"


# ------------------------------------------------------------------------------------------- host reads
def _sync_guard() -> Any:
    if "sync_guard" in sys.modules:
        return sys.modules["sync_guard"]
    spec = importlib.util.spec_from_file_location("sync_guard", ROOT / "tests" / "sync_guard.py")
    if spec is None or spec.loader is None:
        raise ImportError("tests/sync_guard.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sync_guard"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def sync_recorder() -> Any:
    """The op recorder of ``tests/sync_guard.py`` (aten ops that read tensor values on the host)."""
    return _sync_guard().SyncRecorder


def count_page_faults(step: Step, steps: int = 3) -> float:
    """Minor page faults per step: each first touch of freshly allocated memory costs one per 4 KiB page."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def count_host_reads(step: Step, device: str) -> dict[str, int]:
    """Ops that read tensor values on the host in one step; on CUDA also the syncs the CUDA runtime reports."""
    guard = _sync_guard()
    recorder = guard.SyncRecorder()
    reads = guard.HostReadRecorder() if hasattr(guard, "HostReadRecorder") else None  # .tolist(), .cpu(), ...
    with recorder:
        if reads is None:
            step()
        else:
            with reads:
                step()
    counts = {"host_reads": len(recorder.syncs) + (len(reads.reads) if reads is not None else 0)}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts["cuda_syncs"] = sum("synchroniz" in str(w.message) for w in caught)
    return counts


# ----------------------------------------------------------------------------------------------- memory
def peak_allocated(events: Any) -> int:
    """The highest total of live bytes over a profiler's CPU allocation events, counted from zero."""
    changes = sorted(
        (e.start_ns(), e.nbytes())
        for e in events
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    return max(itertools.accumulate((nbytes for _, nbytes in changes), initial=0))


def extra_memory(case: Case, x: torch.Tensor, y: torch.Tensor, device: str, steps: int) -> int:
    """Peak of the memory a fresh candidate allocates over ``steps`` steps (its one-time buffers included).

    CPU: torch's allocation events recorded by the profiler; CUDA: ``torch.cuda.max_memory_allocated``.
    """
    small = case.make(*make_batch((2, *x.shape[1:-2], 8, 8), x.dtype, device), num_classes(x.shape))
    small()  # load lazily imported code on a tiny batch
    step = case.make(x, y, num_classes(x.shape))  # its copy of the batch is made here, outside the measurement
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(steps):
            step()
    return peak_allocated(prof.profiler.kineto_results.events())


# ---------------------------------------------------------------------------------------------- reports
def machine() -> dict[str, Any]:
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = names[0] if names else model
    info: dict[str, Any] = {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    for lib in ("torchvision", "timm", "kornia"):
        try:
            info[lib] = __import__(lib).__version__
        except ImportError:
            info[lib] = None
    return info


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = []
    for shape, dtype, classes in dict.fromkeys((r["shape"], r["dtype"], r["classes"]) for r in rows):
        lines += [
            f"\n### {shape} {dtype}, {classes} classes\n",
            "| candidate | median ms | × copy | extra MiB / step | page faults / step | host reads / step |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in rows if r["shape"] == shape and r["dtype"] == dtype):
            if r.get("error"):
                lines.append(f"| {r['case']} | unsupported: {r['error']} | | | | |")
                continue
            memory = r.get("extra_bytes")
            mib = f"{memory / 2**20:.1f}" if isinstance(memory, int) else (memory or "")
            reads = str(r["host_reads"]) + (f" ({r['cuda_syncs']} CUDA syncs)" if "cuda_syncs" in r else "")
            split = f" (kernel {r['kernel_ms']:.3f} + overhead {r['overhead_ms']:.3f})" if "kernel_ms" in r else ""
            cells = f"{r['median_ms']:.3f}{split} | {r['ratio_to_copy']:.2f} | {mib} | {r['page_faults']:.0f} | {reads}"
            lines.append(f"| {r['case']} | {cells} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="64x3x224x224,256x3x32x32", help="comma-separated BxCxHxW shapes")
    parser.add_argument("--dtypes", default="float32,uint8,bfloat16", help=f"comma-separated, from {list(DTYPES)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from cutmix, mixup, both")
    parser.add_argument(
        "--libraries",
        default="ours,hook,torchvision,timm,kornia",
        help="comma-separated candidates; hook: MixCallback's whole on_train_batch_start, time split kernel/rest",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads on CPU")
    parser.add_argument("--rounds", type=int, default=20, help="round-robin rounds")
    parser.add_argument("--inner", type=int, default=4, help="timed steps per candidate per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--memory-steps", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--out", type=Path, default=None, help="JSON file; default bench/results/kernels-DEVICE.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(s) for s in shape.split("x")) for shape in args.shapes.split(",")]
    cases = build_cases(args.methods.split(","), args.libraries.split(","))
    rows: list[dict[str, Any]] = []
    for shape in shapes:
        for dtype_name in args.dtypes.split(","):
            x, y = make_batch(shape, DTYPES[dtype_name], args.device)
            steps, errors = {}, {}
            for case in cases:
                try:
                    steps[case.name] = case.make(x, y, num_classes(shape))
                except Exception as error:  # an anchor that does not support the dtype
                    errors[case.name] = describe(error)
            times, failed = time_steps(
                steps, rounds=args.rounds, inner=args.inner, warmup=args.warmup, device=args.device
            )
            errors.update(failed)
            floor = statistics.median(times["copy"])
            for case in cases:
                row: dict[str, Any] = {
                    "shape": "×".join(map(str, shape)),
                    "dtype": dtype_name,
                    "classes": num_classes(shape),
                    "case": case.name,
                    "library": case.library,
                    "method": case.method,
                    "mode": case.mode,
                }
                if case.name in errors:
                    rows.append({**row, "error": errors[case.name]})
                    continue
                median = statistics.median(times[case.name])
                row.update(
                    median_ms=median * 1e3,
                    iqr_ms=iqr(times[case.name]) * 1e3,
                    samples=len(times[case.name]),
                    ratio_to_copy=median / floor,
                )
                step = steps[case.name]
                if isinstance(step, HookStep):  # the hook's time split: the kernel, and everything else
                    row["kernel_ms"] = statistics.median(step.kernel) * 1e3
                    row["overhead_ms"] = (
                        statistics.median([t - k for t, k in zip(step.total, step.kernel, strict=True)]) * 1e3
                    )
                try:
                    row.update(count_host_reads(steps[case.name], args.device))
                    row["page_faults"] = count_page_faults(steps[case.name])
                    if not args.no_memory:
                        row["extra_bytes"] = extra_memory(case, x, y, args.device, args.memory_steps)
                except Exception as error:
                    row["error"] = describe(error)
                rows.append(row)
            del steps, x, y
            print(markdown([r for r in rows if r["shape"] == rows[-1]["shape"] and r["dtype"] == dtype_name]))

    report = {"machine": machine(), "command": command(), "rows": rows}
    write_report(report, args.out or ROOT / "bench" / "results" / f"kernels-{args.device.split(':')[0]}.json")


def command() -> str:
    """The command line of this run, for the report."""
    return " ".join([Path(sys.executable).name, *sys.argv])


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write a report as JSON and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\n{json.dumps(report['machine'])}\nwritten to {out}")


if __name__ == "__main__":
    main()
