"""Train a small CNN without mixing, with CutMix and with MixUp, and compare test accuracy and calibration.

By default it runs on scikit-learn's 8×8 handwritten digits (shipped with scikit-learn: nothing is downloaded),
upscaled to 16×16, for 3 methods × 3 seeds of 20 epochs, with clean labels and with 20% of the training labels
replaced by a wrong class: a few minutes on 2 CPU cores. Each model is also tested on the test images with a
zeroed square at a random position (6×6 and 8×8; the CutMix paper's occlusion test). It writes
``outputs/mixed_batch.png`` (training batches exactly as ``training_step`` receives them, with the two
heaviest classes of each soft target) and ``outputs/results.md`` / ``outputs/results.csv``. Run with the
documented configuration (no arguments, or arguments that change nothing), it also rewrites
``docs/results/demo.md`` and ``demo.json`` (the tables, the configuration and its hash) and the copies of the
tables embedded in ``README.md`` and ``docs/demo.md``; the test suite checks that these agree.

    make demo                                   # python examples/demo.py
    make demo ARGS="--label-noise 0.3"          # only 30% of the training labels replaced by a wrong class
    make demo ARGS="--verbose"                  # Lightning's own progress bars and messages
    python examples/demo.py --methods none cutmix mixup elem --seeds 5
    python examples/demo.py --dataset cifar10 --data-dir ~/data              # your copy of CIFAR-10
    python examples/demo.py --dataset cifar10 --data-dir ~/data --download   # fetch it first (170 MB)

The model (``lightning_mix.demo.SmallCNN``) is the same ordinary LightningModule in every run, with a plain
``F.cross_entropy`` loss; only ``Trainer(callbacks=[...])`` changes. The data split and the label noise are
fixed (seed 0); the seeds vary the initialisation, the batch order and the mixing. The mixing settings are the
papers' (CutMix α = 1, MixUp α = 1 as in its CIFAR-10 runs), not tuned here. Set ``LIGHTNING_MIX_SMALL=1`` for
a seconds-long smoke run.

The digits model is so small that one CPU thread trains it about as fast as several, and a single thread does
not slow to a crawl when other processes keep the cores busy; hence ``--threads 1`` by default. Raise it for
CIFAR-10 on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import hashlib
import inspect
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from tqdm.auto import tqdm

import lightning_mix
from lightning_mix import CutMixCallback, MixCallback, MixUpCallback
from lightning_mix.demo import BatchSnapshot, CIFAR10DataModule, DigitsDataModule, SmallCNN, occlude, plot_batch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "docs" / "results" / "demo.md"  # the committed tables; demo.json beside it
EMBEDDED_IN = (REPO / "README.md", REPO / "docs" / "demo.md")  # hold a copy between the markers below
START, END = "<!-- demo-results:start -->", "<!-- demo-results:end -->"
OCCLUSION_SEED = 0  # the squares' positions: the same for every model

METHODS = {
    "none": "no mixing",
    "cutmix": "CutMix (α=1)",
    "mixup": "MixUp (α=1)",
    "elem": "CutMix or MixUp per sample",
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 20, "batch_size": 64, "width": 32, "label_noise": [0.0, 0.2], "occlusion": [6, 8]},
    "cifar10": {"epochs": 30, "batch_size": 128, "width": 64, "label_noise": [0.0], "occlusion": [12, 16]},
}


def make_callback(method: str, seed: int) -> MixCallback | None:
    """The mixing callback of a method, or None for the baseline."""
    if method == "cutmix":
        return CutMixCallback(alpha=1.0, seed=seed)
    if method == "mixup":
        return MixUpCallback(alpha=1.0, seed=seed)
    if method == "elem":
        return MixCallback(mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.5, mode="elem", seed=seed)
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DEFAULTS), default="digits")
    parser.add_argument("--data-dir", default="data", help="CIFAR-10 only: directory holding cifar-10-batches-py")
    parser.add_argument("--download", action="store_true", help="CIFAR-10 only: download it if missing")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["none", "cutmix", "mixup"])
    parser.add_argument("--seeds", type=int, default=3, help="runs per method (seeds 0, 1, ...)")
    parser.add_argument("--epochs", type=int, help="default: 20 (digits), 30 (cifar10)")
    parser.add_argument(
        "--label-noise",
        type=float,
        nargs="+",
        help="fractions of wrong training labels, a table each (default: 0 0.2 for digits, 0 for cifar10)",
    )
    parser.add_argument(
        "--occlusion",
        type=int,
        nargs="*",
        help="sides of the zeroed test squares (default: 6 8 for digits, 12 16 for cifar10; none: skip)",
    )
    parser.add_argument("--image-size", type=int, default=16, help="digits only: side in pixels (8 = original)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1, see below)")
    parser.add_argument("--limit-batches", type=int, help="batches per epoch and per evaluation (smoke tests)")
    parser.add_argument("--verbose", action="store_true", help="Lightning's own progress bars and messages")
    args = parser.parse_args(argv)
    if os.environ.get("LIGHTNING_MIX_SMALL"):
        args.epochs, args.seeds, args.limit_batches = 1, 1, args.limit_batches or 2
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be at least 1")
    if not all(0 <= noise < 1 for noise in args.label_noise):
        parser.error("--label-noise must be in [0, 1)")
    if args.dataset == "cifar10" and any(args.label_noise):
        parser.error("--label-noise is only implemented for digits")
    side = args.image_size if args.dataset == "digits" else 32
    if not all(0 < size <= side for size in args.occlusion):
        parser.error(f"--occlusion sizes must be in [1, {side}], the image side")
    return args


def make_data(args: argparse.Namespace, label_noise: float) -> LightningDataModule:
    """The datamodule of a table, not yet set up."""
    if args.dataset == "cifar10":
        return CIFAR10DataModule(args.data_dir, download=args.download, batch_size=args.batch_size)
    return DigitsDataModule(batch_size=args.batch_size, image_size=args.image_size, label_noise=label_noise)


def make_model(args: argparse.Namespace) -> SmallCNN:
    channels = CIFAR10DataModule.in_channels if args.dataset == "cifar10" else DigitsDataModule.in_channels
    return SmallCNN(num_classes=10, in_channels=channels, width=args.width)


def trainer_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The Trainer arguments that shape the runs (the display ones are added in train_once)."""
    limits = {}
    if args.limit_batches:
        limits = {
            name: args.limit_batches for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches")
        }
    return {"max_epochs": args.epochs, "num_sanity_val_steps": 0, **limits}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    plain = bool | int | float | str | tuple | None
    return {key: value for key, value in values.items() if not key.startswith("_") and isinstance(value, plain)}


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """Everything that determines the runs' results, as plain values (hashed into the committed results).

    The arguments the modules and callbacks were built with are read back from them, defaults included, so a
    changed default changes the hash too. Where the results go and how they are displayed are left out.
    """
    data = [dict(make_data(args, noise).hparams) for noise in args.label_noise]
    for hparams in data:  # where the user keeps CIFAR-10 does not change the runs
        hparams.pop("data_dir", None)
        hparams.pop("download", None)
    callbacks = {}
    for method in args.methods:
        mixer = make_callback(method, seed=0)
        if mixer is not None:
            arguments = {
                name: getattr(mixer, name) for name in inspect.signature(MixCallback).parameters if name in vars(mixer)
            }
            callbacks[method] = {"class": type(mixer).__name__, **_plain(arguments), "seed": "run seed"}
    return {
        "dataset": args.dataset,
        "label_noise": args.label_noise,
        "methods": args.methods,
        "seeds": list(range(args.seeds)),
        "data": data,
        "model": {"class": "SmallCNN", **dict(make_model(args).hparams)},
        "trainer": trainer_arguments(args),
        "callbacks": callbacks,
        "occlusion": {"sizes": args.occlusion, "value": 0.0, "seed": OCCLUSION_SEED},
        "threads": args.threads,
        "lightning_mix": lightning_mix.__version__,
    }


def configuration_hash(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def documented_configuration() -> dict[str, Any]:
    """The configuration of ``make demo`` without arguments, whose results are committed."""
    with _environ_without("LIGHTNING_MIX_SMALL"):
        return configuration(parse_args([]))


@contextlib.contextmanager
def _environ_without(name: str) -> Iterator[None]:
    value = os.environ.pop(name, None)
    try:
        yield
    finally:
        if value is not None:
            os.environ[name] = value


class Progress(Callback):
    """Advances the demo's single progress bar by one per training epoch and shows the run's latest metrics."""

    def __init__(self, bar: Any, run: str) -> None:
        self.bar, self.run = bar, run

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        shown = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        if "val/acc" in metrics:
            shown.append(f"val acc {100 * float(metrics['val/acc']):.1f}%")
        self.bar.set_postfix_str(f"{self.run}: " + ", ".join(shown), refresh=False)
        self.bar.update(1)


def occluded_accuracy(model: LightningModule, data: LightningDataModule, size: int) -> float:
    """Accuracy on the test images with a zeroed ``size``×``size`` square at a random position in each.

    The test loader does not shuffle and the positions come from one fixed seed, so every model sees the
    same square on the same image.
    """
    generator = torch.Generator().manual_seed(OCCLUSION_SEED)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in data.test_dataloader():
            x, y = x.to(model.device), y.to(model.device)
            correct += int((model(occlude(x, size, generator=generator)).argmax(dim=1) == y).sum())
            total += y.numel()
    return correct / total


def train_once(
    args: argparse.Namespace, data: LightningDataModule, method: str, seed: int, progress: Callback | None
) -> dict[str, Any]:
    L.seed_everything(seed, verbose=False)
    callbacks: list[Callback] = []
    mixer = make_callback(method, seed)
    snapshot = BatchSnapshot()
    if mixer is not None:
        callbacks += [mixer, snapshot]  # the snapshot runs after the mixer: it sees what training_step sees
    if progress is not None:
        callbacks.append(progress)
    trainer = L.Trainer(
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=args.verbose,
        enable_progress_bar=args.verbose,
        **trainer_arguments(args),
    )
    model = make_model(args)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    (metrics,) = trainer.test(model, datamodule=data, verbose=False)
    row = {
        "method": method,
        "seed": seed,
        "test_acc": metrics["test/acc"],
        "test_ece": metrics["test/ece"],
        "test_nll": metrics["test/loss"],
    }
    row.update({f"occluded_{size}_acc": occluded_accuracy(model, data, size) for size in args.occlusion})
    return {**row, "train_seconds": seconds, "snapshot": snapshot.batch}


def save_picture(snapshots: dict[str, Any], path: Path, dataset: str) -> None:
    if not snapshots:
        return
    fig = plt.figure(figsize=(10.4, 2.0 * len(snapshots)), layout="constrained")
    subfigures = fig.subfigures(len(snapshots), 1, squeeze=False)[:, 0]
    for sub, (method, (images, targets)) in zip(subfigures, snapshots.items(), strict=True):
        plot_batch(images[:8], targets, title=f"{METHODS[method]}: first training batch", figure=sub)
    fig.suptitle(f"{dataset}: mixed inputs and mixed labels (class: weight) as training_step receives them")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def mean_std(values: list[float]) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{100 * mean:5.2f} ± {100 * std:4.2f}" if len(values) > 1 else f"{100 * mean:5.2f}"


def summarise(rows: list[dict[str, Any]], methods: list[str], occlusion: list[int], header: str) -> str:
    occluded = "".join(f" occluded {size}×{size} (%) |" for size in occlusion)
    lines = [
        header,
        "",
        f"| method | test accuracy (%) |{occluded} test ECE (%) | test NLL | train time / run (s) |",
        "|---|---|" + "---|" * len(occlusion) + "---|---|---|",
    ]
    for method in methods:
        runs = [row for row in rows if row["method"] == method]
        nll = statistics.fmean(row["test_nll"] for row in runs)
        seconds = statistics.fmean(row["train_seconds"] for row in runs)
        hidden = "".join(f" {mean_std([r[f'occluded_{size}_acc'] for r in runs])} |" for size in occlusion)
        lines.append(
            f"| {METHODS[method]} | {mean_std([r['test_acc'] for r in runs])} |{hidden} "
            f"{mean_std([r['test_ece'] for r in runs])} | {nll:.3f} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def table_header(args: argparse.Namespace, label_noise: float) -> str:
    noise = f", {label_noise:.0%} noisy training labels" if label_noise else ", clean labels"
    size = f" {args.image_size}×{args.image_size}" if args.dataset == "digits" else ""
    occluded = ""
    if args.occlusion:
        sides = " and ".join(f"{size}×{size}" for size in args.occlusion)
        occluded = f"; occluded = test images with a zeroed {sides} square at a random position"
    return (
        f"**{args.dataset}{size}{noise}**, {args.epochs} epochs, SmallCNN(width={args.width}); "
        f"mean ± std over {args.seeds} seed(s); ECE = expected calibration error (15 bins){occluded}"
    )


def embed(text: str, document: str) -> str:
    """``document`` with the text between the demo-results markers replaced by ``text``.

    Raises:
        ValueError: if the document lacks the markers.
    """
    before, start, rest = document.partition(START)
    _, end, after = rest.partition(END)
    if not (start and end):
        raise ValueError(f"Expected the document to hold {START} ... {END}, but got no such block.")
    return f"{before}{START}\n{text.strip()}\n{END}{after}"


def embedded(document: str) -> str | None:
    """The text between the demo-results markers of ``document``, or None without them."""
    _, start, rest = document.partition(START)
    inside, end, _ = rest.partition(END)
    return inside.strip() if start and end else None


def write_results(text: str, record: dict[str, Any], results: Path, documents: tuple[Path, ...]) -> None:
    """Write the committed tables, their record, and the copies embedded in the documents that hold markers."""
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(text.strip() + "\n", encoding="utf-8")
    results.with_suffix(".json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for document in documents:
        if document.exists() and embedded(document.read_text(encoding="utf-8")) is not None:
            document.write_text(embed(text, document.read_text(encoding="utf-8")), encoding="utf-8")


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[None]:
    """Silence Lightning's start-up messages and the warnings that are noise here, unless verbose."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*The number of training batches.*is smaller than the logging interval.*")
        if not verbose:
            warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")  # inside Lightning, on recent torch
            for logger in loggers:
                logger.setLevel(logging.WARNING)  # "GPU available: ...", "LOCAL_RANK: ...", "`Trainer.fit` stopped"
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with quiet(args.verbose):
            return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args: argparse.Namespace) -> str:
    picture = args.out / "mixed_batch.png"
    runs = [
        (noise, seed, method) for noise in args.label_noise for seed in range(args.seeds) for method in args.methods
    ]
    rows: list[dict[str, Any]] = []
    snapshots: dict[str, Any] = {}
    bar = None
    if not args.verbose:
        description = f"{len(runs)} runs × {args.epochs} epochs"
        bar = tqdm(total=len(runs) * args.epochs, desc=description, unit="epoch", dynamic_ncols=True)
    try:
        data = None
        for number, (noise, seed, method) in enumerate(runs, start=1):
            if data is None or data.hparams.get("label_noise", 0.0) != noise:
                data = make_data(args, noise)
                try:
                    data.prepare_data()  # fails early, with a hint, when the files are missing
                except (FileNotFoundError, ImportError) as error:
                    sys.exit(f"demo.py: {error}")
                data.setup("fit")
            label = f"[{number}/{len(runs)}] {METHODS[method]}, seed {seed}" + (f", noise {noise:.0%}" if noise else "")
            if bar is None:
                print(f"\n{label}", flush=True)
            progress = None if bar is None else Progress(bar, label)
            row = {"label_noise": noise, **train_once(args, data, method, seed, progress)}
            snapshot = row.pop("snapshot")
            if snapshot is not None and method not in snapshots:
                snapshots[method] = snapshot
                save_picture(snapshots, picture, args.dataset)
            rows.append(row)
    finally:
        if bar is not None:
            bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tables = [
        summarise(
            [row for row in rows if row["label_noise"] == noise],
            args.methods,
            args.occlusion,
            table_header(args, noise),
        )
        for noise in args.label_noise
    ]
    config = configuration(args)
    digest = configuration_hash(config)
    footer = (
        f"Configuration hash `{digest}`; Python {platform.python_version()}, torch {torch.__version__}, "
        f"lightning {L.__version__}, {torch.get_num_threads()} CPU thread(s); "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}."
    )
    text = "\n\n".join([*tables, footer])
    (args.out / "results.md").write_text(text + "\n")
    print("\n" + text)
    written = [picture, args.out / "results.md", args.out / "results.csv"]
    if config == documented_configuration():
        record = {
            "config_hash": digest,
            "config": config,
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": L.__version__,
            "runs": rows,
        }
        write_results(text, record, RESULTS, EMBEDDED_IN)
        written += [RESULTS, RESULTS.with_suffix(".json")] + [path for path in EMBEDDED_IN if path.exists()]
    print("\nWrote " + ", ".join(_shown(path) for path in written) + ".")
    return text


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


if __name__ == "__main__":
    main()
