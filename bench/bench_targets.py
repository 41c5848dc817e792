"""What the target form costs a step: ``targets="labels"`` against ``targets="soft"``, hook and loss together.

A step pays twice for its targets: in ``MixCallback.on_train_batch_start`` (``"soft"`` builds a dense ``(B, C)``
target; ``"labels"`` wraps the labels in :class:`~lightning_mix.MixedLabels`) and in the loss (``F.cross_entropy``
of probabilities against the cross-entropy of two label sets interpolated by λ). Each case times, per call, the
hook as Lightning calls it, then ``F.cross_entropy(logits, y)`` forward and backward on fresh logits; the two
target forms alternate call by call (in a shuffled order), and the table reports medians. Run:

    python bench/bench_targets.py --batch 128 --classes 10,1000 --repeats 400
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from lightning_mix import MixCallback

CASES = {  # name: (mixup_alpha, cutmix_alpha, mode)
    "mixup batch": (0.8, 0.0, "batch"),
    "cutmix batch": (0.0, 1.0, "batch"),
    "both elem": (0.8, 1.0, "elem"),
}
FORMS = ("labels", "soft")


class Step:
    """The hook, then the loss's forward and backward; ``hook``, ``loss`` and ``total`` collect seconds per call."""

    def __init__(self, case: str, targets: str, x: torch.Tensor, y: torch.Tensor, classes: int) -> None:
        mixup_alpha, cutmix_alpha, mode = CASES[case]
        self.callback = MixCallback(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            mode=mode,
            pairing="adjacent",
            targets=targets,  # type: ignore[arg-type]
            num_classes=classes if targets == "soft" else None,
            seed=0,
        )
        self.trainer = L.Trainer(
            callbacks=[self.callback], logger=False, enable_progress_bar=False, enable_model_summary=False
        )
        self.trainer.training = True  # inside trainer.fit(), Lightning sets this and calls the hook
        self.module = L.LightningModule()
        # Only the batch list refers to the input during the hook, as with a fresh batch from a DataLoader, so the
        # callback mixes it in place; the labels are the loader's fresh tensor too (a clone, outside the timing).
        self.pool, self.y = [x.clone()], y
        self.logits = torch.randn(y.shape[0], classes, generator=torch.Generator().manual_seed(1))
        self.hook: list[float] = []
        self.loss: list[float] = []

    def __call__(self) -> None:
        batch = [self.pool.pop(), self.y.clone()]
        logits = self.logits.clone().requires_grad_()
        start = time.perf_counter()
        self.callback.on_train_batch_start(self.trainer, self.module, batch, 0)
        middle = time.perf_counter()
        F.cross_entropy(logits, batch[1]).backward()
        end = time.perf_counter()
        self.hook.append(middle - start)
        self.loss.append(end - middle)
        self.pool.append(batch[0])


def run(batch: int, size: int, classes: int, repeats: int, warmup: int, cases: list[str]) -> list[dict[str, Any]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=generator)
    y = torch.randint(classes, (batch,), generator=generator)
    rows = []
    for case in cases:
        steps = {form: Step(case, form, x, y, classes) for form in FORMS}
        order = list(FORMS)
        for i in range(warmup + repeats):
            random.shuffle(order)
            for form in order:
                steps[form]()
            if i + 1 == warmup:
                for step in steps.values():
                    step.hook.clear()
                    step.loss.clear()
        for form, step in steps.items():
            totals = [h + loss for h, loss in zip(step.hook, step.loss, strict=True)]
            rows.append(
                {
                    "case": case,
                    "classes": classes,
                    "targets": form,
                    "hook_ms": statistics.median(step.hook) * 1e3,
                    "loss_ms": statistics.median(step.loss) * 1e3,
                    "total_ms": statistics.median(totals) * 1e3,
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | classes | hook, labels | hook, soft | loss, labels | loss, soft | **step, labels** | step, soft |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keyed = {(r["case"], r["classes"], r["targets"]): r for r in rows}
    for case, classes in dict.fromkeys((r["case"], r["classes"]) for r in rows):
        a, b = keyed[case, classes, "labels"], keyed[case, classes, "soft"]
        lines.append(
            f"| {case} | {classes} | {a['hook_ms']:.3f} | {b['hook_ms']:.3f} | {a['loss_ms']:.3f} | "
            f"{b['loss_ms']:.3f} | **{a['total_ms']:.3f}** | {b['total_ms']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", default="10,1000", help="comma-separated class counts")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the rows and the machine to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(0)
    rows = [
        row
        for classes in (int(c) for c in args.classes.split(","))
        for row in run(args.batch, args.size, classes, args.repeats, args.warmup, args.cases.split(","))
    ]
    print(
        f"ms per call, medians of {args.repeats}; batch {args.batch}x3x{args.size}x{args.size}, float32, CPU, "
        f"{args.threads} thread(s)"
    )
    print(table(rows))
    if args.out:
        meta = {
            "date": datetime.date.today().isoformat(),
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
