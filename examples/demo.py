"""Train a small CNN without mixing, with CutMix and with MixUp, and compare test accuracy and calibration.

By default it runs on scikit-learn's 8×8 handwritten digits (shipped with scikit-learn: nothing is downloaded),
upscaled to 16×16, for 3 methods × 3 seeds of 20 epochs: a few minutes on 2 CPU cores. It writes
``outputs/mixed_batch.png`` (training batches exactly as ``training_step`` receives them, with the two
heaviest classes of each soft target) and ``outputs/results.md`` / ``outputs/results.csv``.

    make demo                                   # python examples/demo.py
    make demo ARGS="--label-noise 0.2"          # 20% of the training labels replaced by a wrong class
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
import csv
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning import Callback, LightningDataModule

from lightning_mix import CutMixCallback, MixCallback, MixUpCallback
from lightning_mix.demo import BatchSnapshot, CIFAR10DataModule, DigitsDataModule, SmallCNN, plot_batch

METHODS = {
    "none": "no mixing",
    "cutmix": "CutMix (α=1)",
    "mixup": "MixUp (α=1)",
    "elem": "CutMix or MixUp per sample",
}
DEFAULTS = {
    "digits": {"epochs": 20, "batch_size": 64, "width": 32},
    "cifar10": {"epochs": 30, "batch_size": 128, "width": 64},
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
    parser.add_argument("--label-noise", type=float, default=0.0, help="fraction of wrong training labels")
    parser.add_argument("--image-size", type=int, default=16, help="digits only: side in pixels (8 = original)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1, see below)")
    parser.add_argument("--limit-batches", type=int, help="batches per epoch and per evaluation (smoke tests)")
    args = parser.parse_args(argv)
    if os.environ.get("LIGHTNING_MIX_SMALL"):
        args.epochs, args.seeds, args.limit_batches = 1, 1, args.limit_batches or 2
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.seeds < 1 or args.epochs < 1:
        parser.error("--seeds and --epochs must be at least 1")
    if not 0 <= args.label_noise < 1:
        parser.error("--label-noise must be in [0, 1)")
    if args.dataset == "cifar10" and args.label_noise:
        parser.error("--label-noise is only implemented for digits")
    return args


def make_data(args: argparse.Namespace) -> tuple[LightningDataModule, int]:
    if args.dataset == "cifar10":
        data: LightningDataModule = CIFAR10DataModule(args.data_dir, download=args.download, batch_size=args.batch_size)
        data.prepare_data()  # fails early, with a hint, if the files are missing and --download is not given
    else:
        data = DigitsDataModule(batch_size=args.batch_size, image_size=args.image_size, label_noise=args.label_noise)
    data.setup("fit")
    return data, data.in_channels  # type: ignore[attr-defined]


def train_once(
    args: argparse.Namespace, data: LightningDataModule, channels: int, method: str, seed: int
) -> dict[str, Any]:
    L.seed_everything(seed, verbose=False)
    callbacks: list[Callback] = []
    mixer = make_callback(method, seed)
    snapshot = BatchSnapshot()
    if mixer is not None:
        callbacks += [mixer, snapshot]  # the snapshot runs after the mixer: it sees what training_step sees
    limits = {}
    if args.limit_batches:
        limits = {
            name: args.limit_batches for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches")
        }
    trainer = L.Trainer(
        max_epochs=args.epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **limits,
    )
    model = SmallCNN(num_classes=10, in_channels=channels, width=args.width)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    (metrics,) = trainer.test(model, datamodule=data, verbose=False)
    return {
        "method": method,
        "seed": seed,
        "test_acc": metrics["test/acc"],
        "test_ece": metrics["test/ece"],
        "test_nll": metrics["test/loss"],
        "train_seconds": seconds,
        "snapshot": snapshot.batch,
    }


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


def summarise(rows: list[dict[str, Any]], methods: list[str], header: str) -> str:
    lines = [
        header,
        "",
        "| method | test accuracy (%) | test ECE (%) | test NLL | train time / run (s) |",
        "|---|---|---|---|---|",
    ]
    for method in methods:
        runs = [row for row in rows if row["method"] == method]
        nll = statistics.fmean(row["test_nll"] for row in runs)
        seconds = statistics.fmean(row["train_seconds"] for row in runs)
        lines.append(
            f"| {METHODS[method]} | {mean_std([r['test_acc'] for r in runs])} | "
            f"{mean_std([r['test_ece'] for r in runs])} | {nll:.3f} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*The number of training batches.*is smaller than the logging interval.*")
    try:
        data, channels = make_data(args)
    except (FileNotFoundError, ImportError) as error:
        sys.exit(f"demo.py: {error}")
    picture = args.out / "mixed_batch.png"
    total = len(args.methods) * args.seeds
    rows: list[dict[str, Any]] = []
    snapshots: dict[str, Any] = {}
    for seed in range(args.seeds):
        for method in args.methods:
            print(f"\n[{len(rows) + 1}/{total}] {METHODS[method]}, seed {seed}", flush=True)
            row = train_once(args, data, channels, method, seed)
            snapshot = row.pop("snapshot")
            if snapshot is not None and method not in snapshots:
                snapshots[method] = snapshot
                save_picture(snapshots, picture, args.dataset)
            rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    noise = f", {args.label_noise:.0%} noisy training labels" if args.label_noise else ", clean labels"
    size = f" {args.image_size}×{args.image_size}" if args.dataset == "digits" else ""
    header = (
        f"{args.dataset}{size}{noise}, {args.epochs} epochs, SmallCNN(width={args.width}); "
        f"mean ± std over {args.seeds} seed(s); ECE = expected calibration error (15 bins)"
    )
    table = summarise(rows, args.methods, header)
    (args.out / "results.md").write_text(table + "\n")
    print("\n" + table)
    print(f"\nWrote {picture}, {args.out / 'results.md'} and {args.out / 'results.csv'}.")
    return table


if __name__ == "__main__":
    main()
