"""Training-step overhead of ``MixCallback`` through a real ``lightning.Trainer``, with its memory and host syncs.

CPU (default): a small CNN on 32×32 images, batch 128. CUDA: torchvision's ResNet-50 at 224², batch 64. Every
configuration (MixUp, CutMix and both, per batch and per sample) trains the same model from the same initial
weights on the same data, in fresh Trainers interleaved in a shuffled order. A timing callback placed first
records each step from ``on_train_batch_start`` to ``on_train_batch_end``: mixing, forward, backward and
optimizer step, data loading left out (which makes the overhead look larger, not smaller). The first steps of
every run are warm-up and dropped.

The mixing callback acts on odd steps only, so every run times both sides of the comparison under the same load:
the overhead is the median difference between a mixed step and the unmixed step just before it, relative to the
median unmixed step. On a machine shared with other work this is far steadier than comparing separate runs,
which ``--separate`` does instead (runs without the callback at all, against runs that mix every step).

Syncs and memory are watched inside the callback's hook only, in one more run per configuration (the rest of the
training loop is not ours). Syncs, from the second step on (the first batch of a fit checks the range of the
class indices once, on purpose): the op recorder of ``tests/sync_guard.py`` on CPU,
``torch.cuda.set_sync_debug_mode("error")`` on CUDA, which raises at the first sync. Memory: the peak of what
torch allocates inside the hook over the first steps, its workspace included (profiler allocation events on CPU,
``torch.cuda.max_memory_allocated`` on CUDA, where the peak of a whole fit with the callback minus the peak
without it is reported as well).

Run ``python bench/bench_training.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from bench_kernels import HookStep, command, iqr, peak_allocated, sync_recorder, time_kernel, write_report
from bench_kernels import machine as kernels_machine
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_mix import MixCallback

ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 10
CONFIGS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "mixup batch": {"mixup_alpha": 0.8, "mode": "batch"},
    "cutmix batch": {"cutmix_alpha": 1.0, "mode": "batch"},
    "mixup elem": {"mixup_alpha": 0.8, "mode": "elem"},
    "cutmix elem": {"cutmix_alpha": 1.0, "mode": "elem"},
    "both elem": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mode": "elem"},
    # the dense (B, C) targets of earlier versions, against the default mixed labels above
    "mixup batch soft": {"mixup_alpha": 0.8, "mode": "batch", "targets": "soft"},
    "cutmix batch soft": {"cutmix_alpha": 1.0, "mode": "batch", "targets": "soft"},
    "both elem soft": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mode": "elem", "targets": "soft"},
}


def small_cnn() -> nn.Module:
    """A CIFAR-sized CNN: three conv-BN-ReLU-pool stages (32, 64, 128 channels) and a linear head."""

    def stage(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *stage(3, 32), *stage(32, 64), *stage(64, 128), nn.Flatten(), nn.Linear(128 * 4 * 4, NUM_CLASSES)
    )


class Classifier(L.LightningModule):
    """Cross-entropy on whatever target the batch holds: class indices, or the callback's soft targets."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        if arch == "resnet50":
            from torchvision.models import resnet50

            self.net = resnet50(num_classes=NUM_CLASSES)
        else:
            self.net = small_cnn()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)


def _event_pair() -> tuple[torch.cuda.Event, torch.cuda.Event]:
    return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


class EveryOtherStep(MixCallback):
    """The mixing callback acting on odd steps only: even steps are the no-callback baseline of the same run."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step % 2:
            super().on_train_batch_start(trainer, pl_module, batch, idx)


class _Timings:
    """Wall times on CPU, or the GPU time between pairs of CUDA events."""

    cuda: bool
    cpu_times: list[float]
    events: list[tuple[torch.cuda.Event, torch.cuda.Event]]

    def times(self) -> list[float]:
        if not self.cuda:
            return self.cpu_times
        torch.cuda.synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in self.events]


class StepTimer(_Timings, Callback):
    """Per-step wall time (CPU) or GPU time between CUDA events (CUDA), from batch start to batch end."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.cpu_times: list[float] = []
        self.events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        if self.cuda:
            self.events.append(_event_pair())
            self.events[-1][0].record()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.cuda:
            self.events[-1][1].record()
        self.cpu_times.append(time.perf_counter() - self._start)


class HookTimer(_Timings):
    """Two callbacks placed around the mixing callback: the time of its ``on_train_batch_start`` on mixed steps.

    On CPU the wall time inside the mixing kernel (``mix_``) is recorded too, so the hook's own overhead (drawing
    the parameters, building the targets, the callback's work) is the difference.
    """

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.kernel_times: list[float] = []
        time_kernel()
        self.cpu_times: list[float] = []
        self.events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        timer = self

        class Before(Callback):
            def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
                if trainer.global_step % 2:
                    if timer.cuda:
                        timer.events.append(
                            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                        )
                        timer.events[-1][0].record()
                    HookStep.kernel_time = 0.0
                    timer.start = time.perf_counter()

        class After(Callback):
            def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
                if trainer.global_step % 2:
                    if timer.cuda:
                        timer.events[-1][1].record()
                    timer.cpu_times.append(time.perf_counter() - timer.start)
                    timer.kernel_times.append(HookStep.kernel_time)

        self.before, self.after = Before(), After()


class HookWatch:
    """Two callbacks placed around the mixing callback, watching its ``on_train_batch_start`` only."""

    def __init__(self, cuda: bool, memory_steps: int) -> None:
        self.cuda, self.memory_steps = cuda, memory_steps
        self.host_reads, self.watched_steps, self.peak_bytes = 0, 0, 0
        self.recorder: Any = None
        self.profiler: Any = None
        self.allocated = 0
        recorder_type, watch = sync_recorder(), self

        class Before(Callback):
            def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
                watch.start(trainer.global_step, recorder_type)

        class After(Callback):
            def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
                watch.stop(trainer.global_step)

        self.before, self.after = Before(), After()

    def start(self, step: int, recorder_type: Any) -> None:
        if step < self.memory_steps:
            if self.cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.allocated = torch.cuda.memory_allocated()
            else:
                activities = [torch.profiler.ProfilerActivity.CPU]
                self.profiler = torch.profiler.profile(activities=activities, profile_memory=True)
                self.profiler.__enter__()
        if step > 0:  # the first batch of a fit checks the class indices, on purpose
            if self.cuda:
                torch.cuda.set_sync_debug_mode("error")
            else:
                self.recorder = recorder_type()
                self.recorder.__enter__()

    def stop(self, step: int) -> None:
        if step > 0:
            self.watched_steps += 1
            if self.cuda:
                torch.cuda.set_sync_debug_mode("default")
            else:
                self.recorder.__exit__(None, None, None)
                self.host_reads += len(self.recorder.syncs)
        if step < self.memory_steps:
            if self.cuda:
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - self.allocated
            else:
                self.profiler.__exit__(None, None, None)
                peak = peak_allocated(self.profiler.profiler.kineto_results.events())
            self.peak_bytes = max(self.peak_bytes, peak)


def make_loader(args: argparse.Namespace) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    n = args.batch_size * 8
    x = torch.rand(n, 3, args.size, args.size, generator=g)
    y = torch.randint(NUM_CLASSES, (n,), generator=g)
    cuda = args.device == "cuda"
    return DataLoader(TensorDataset(x, y), batch_size=args.batch_size, shuffle=True, drop_last=True, pin_memory=cuda)


def fit(
    config: str, args: argparse.Namespace, loader: DataLoader, *, watch: bool = False, paired: bool = False
) -> dict[str, Any]:
    """One fresh Trainer run: step times, and with ``watch`` the syncs and memory of the mixing hook.

    With ``paired`` the callback mixes odd steps only, so the run times both sides of the comparison.
    """
    cuda = args.device == "cuda"
    torch.manual_seed(0)
    model = Classifier(args.arch)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    timer = StepTimer(cuda)
    callbacks: list[Callback] = [timer]
    options = CONFIGS[config]
    hooks = HookWatch(cuda, args.memory_steps) if watch and options is not None else None
    hook_timer = HookTimer(cuda) if paired and options is not None else None
    if options is not None:
        mixer = (EveryOtherStep if paired else MixCallback)(**options, num_classes=NUM_CLASSES, seed=0)
        around = hooks if hooks is not None else hook_timer
        callbacks += [around.before, mixer, around.after] if around is not None else [mixer]
    trainer = L.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        max_steps=args.steps,
        precision=args.precision,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else 0
    trainer.fit(model, loader)
    warmup = args.warmup + args.warmup % 2  # keep (even, odd) pairs aligned
    result: dict[str, Any] = {"times": timer.times()[warmup:]}
    if hook_timer is not None:
        result["hook_times"] = hook_timer.times()[warmup // 2 :]
        result["kernel_times"] = hook_timer.kernel_times[warmup // 2 :]
    if cuda and hooks is None:
        result["fit_peak_bytes"] = torch.cuda.max_memory_allocated() - before
    if hooks is not None:
        result.update(host_reads=hooks.host_reads, watched_steps=hooks.watched_steps, hook_peak_bytes=hooks.peak_bytes)
    return result


def machine() -> dict[str, Any]:
    return {**kernels_machine(), "lightning": L.__version__}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if cuda else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default=None, choices=["small_cnn", "resnet50"], help="default per device")
    parser.add_argument("--size", type=int, default=None, help="image side; default 32 (CPU) or 224 (CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (CPU) or 64 (CUDA)")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {list(CONFIGS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads on CPU")
    parser.add_argument("--steps", type=int, default=170, help="steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="steps dropped at the start of every run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration, interleaved")
    parser.add_argument(
        "--separate",
        action="store_true",
        help="time separate runs with and without the callback instead of alternating steps within each run",
    )
    parser.add_argument("--memory-steps", type=int, default=3, help="steps whose hook memory is recorded")
    parser.add_argument("--out", type=Path, default=None, help="JSON file; default bench/results/training-DEVICE.json")
    args = parser.parse_args(argv)
    gpu = args.device == "cuda"
    args.arch = args.arch or ("resnet50" if gpu else "small_cnn")
    args.size = args.size or (224 if gpu else 32)
    args.batch_size = args.batch_size or (64 if gpu else 128)
    return args


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Interleaved runs; per configuration the median step and its overhead over the no-callback steps."""
    configs = [c for c in args.configs.split(",") if c != "none"]
    loader = make_loader(args)
    times: dict[str, list[float]] = {c: [] for c in ["none", *configs]}
    baseline: dict[str, list[float]] = {c: [] for c in configs}  # the no-callback steps of the same runs
    diffs: dict[str, list[float]] = {c: [] for c in configs}  # (mixed step) - (the unmixed step before it)
    hook: dict[str, list[float]] = {c: [] for c in configs}  # time in the mixing hook, mixed steps
    overhead_times: dict[str, list[float]] = {c: [] for c in configs}  # the hook minus the kernel (CPU)
    fit_peaks: dict[str, list[int]] = {c: [] for c in times}
    order, shuffle = (["none", *configs] if args.separate else list(configs)), random.Random(0)
    for _ in range(args.repeats):
        shuffle.shuffle(order)
        for config in order:
            result = fit(config, args, loader, paired=not args.separate and config != "none")
            steps = result["times"]
            if args.separate or config == "none":
                times[config] += steps
            else:
                without, with_ = steps[0::2], steps[1::2]
                times[config] += with_
                times["none"] += without
                baseline[config] += without
                diffs[config] += [b - a for a, b in zip(without, with_, strict=False)]
                hook[config] += result["hook_times"]
                if args.device != "cuda":
                    pairs = zip(result["hook_times"], result["kernel_times"], strict=True)
                    overhead_times[config] += [t - k for t, k in pairs]
            if "fit_peak_bytes" in result:
                fit_peaks[config].append(result["fit_peak_bytes"])
    base = statistics.median(times["none"])
    rows: list[dict[str, Any]] = [
        {"config": "none", "median_ms": base * 1e3, "iqr_ms": iqr(times["none"]) * 1e3, "steps": len(times["none"])}
    ]
    for config in configs:
        median = statistics.median(times[config])
        if args.separate:
            overhead, reference = median - base, base
        else:  # paired: robust to load drifting between runs
            overhead, reference = statistics.median(diffs[config]), statistics.median(baseline[config])
        row: dict[str, Any] = {
            "config": config,
            "median_ms": median * 1e3,
            "iqr_ms": iqr(times[config]) * 1e3,
            "steps": len(times[config]),
            "overhead_ms": overhead * 1e3,
            "overhead_pct": overhead / reference * 100,
        }
        if hook[config]:
            row["hook_ms"] = statistics.median(hook[config]) * 1e3
            row["hook_pct"] = statistics.median(hook[config]) / reference * 100
        if overhead_times[config]:  # the hook minus the kernel: sampling, targets, the callback's own work
            row["hook_overhead_ms"] = statistics.median(overhead_times[config]) * 1e3
        if fit_peaks[config] and fit_peaks["none"]:
            row["fit_extra_bytes"] = max(fit_peaks[config]) - max(fit_peaks["none"])
        try:
            watched = fit(config, args, loader, watch=True)
            row.update({k: v for k, v in watched.items() if k != "times"})
            row["syncs"] = row["host_reads"]
        except RuntimeError as error:  # set_sync_debug_mode("error") raised
            row["syncs"] = f"sync: {str(error).splitlines()[0][:100]}"
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| callback | median step ms | step overhead | time in the hook | hook minus kernel | hook peak MiB "
        "| host syncs in the hook |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        peak = row.get("hook_peak_bytes")
        mib = f"{peak / 2**20:.2f}" if isinstance(peak, int) else ""
        overhead = f"{row['overhead_pct']:+.2f}% ({row['overhead_ms']:+.2f} ms)" if "overhead_ms" in row else ""
        hook = f"{row['hook_pct']:.2f}% ({row['hook_ms']:.2f} ms)" if "hook_ms" in row else ""
        rest = f"{row['hook_overhead_ms']:.2f} ms" if "hook_overhead_ms" in row else ""
        cells = f"{row['median_ms']:.2f} | {overhead} | {hook} | {rest} | {mib} | {row.get('syncs', '')}"
        lines.append(f"| {row['config']} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = measure(args)
    batch_bytes = args.batch_size * 3 * args.size**2 * 4
    print(f"\n{args.arch} {args.size}×{args.size}, batch {args.batch_size}, {args.precision}, {args.device}")
    print(f"(one float32 batch = {batch_bytes / 2**20:.2f} MiB)\n")
    print(table(rows))
    report: dict[str, Any] = {
        "machine": machine(),
        "command": command(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
    }
    write_report(report, args.out or ROOT / "bench" / "results" / f"training-{args.device}.json")


if __name__ == "__main__":
    main()
