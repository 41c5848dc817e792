"""Summary tables (Markdown) from the JSON that ``bench_kernels.py`` and ``bench_training.py`` write.

Usage: ``python bench/summary.py [bench/results/kernels-cpu.json] [bench/results/training-cpu.json]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def kernels(report: dict[str, Any]) -> str:
    rows = report["rows"]
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    lines = [_machine(report)]
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        lines += [
            f"\n**{dtype}**: median ms per step (× warm copy); extra MiB, page faults and host reads per step at "
            f"{shapes[0]}\n",
            "| candidate | " + " | ".join(shapes) + " | extra MiB | page faults | host reads |",
            "|---|" + "---:|" * (len(shapes) + 3),
        ]
        for case in dict.fromkeys(r["case"] for r in rows):
            at = {r["shape"]: r for r in rows if (r["case"], r["dtype"]) == (case, dtype)}
            cells = [_time(at[shape]) for shape in shapes]
            first = at[shapes[0]]
            if "error" in first:
                cells += ["", "", ""]
            else:
                memory = first.get("extra_bytes")
                cells += [
                    f"{memory / 2**20:.1f}" if isinstance(memory, int) else "",
                    f"{first.get('page_faults', 0):.0f}",
                    str(first["host_reads"]),
                ]
            lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _time(row: dict[str, Any]) -> str:
    if "error" in row:
        return "unsupported"
    text = f"{row['median_ms']:.2f} ({row['ratio_to_copy']:.2f}×)"
    if "kernel_ms" in row:  # a hook row: the kernel's share and the rest of the hook
        text += f" = {row['kernel_ms']:.2f} + {row['overhead_ms']:.2f}"
    return text


def training(report: dict[str, Any]) -> str:
    from bench_training import table  # the table bench_training.py prints

    s = report["settings"]
    pairs = (s["steps"] - s["warmup"]) // 2
    how = f"{s['repeats']} separate runs" if s.get("separate") else f"{s['repeats']} runs × {pairs} step pairs"
    header = f"{s['arch']} at {s['size']}×{s['size']}, batch {s['batch_size']}, {s['precision']}, {s['device']}: {how}"
    return f"{_machine(report)}\n\n{header}\n\n{table(report['rows'])}"


def _machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    device = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores, {m['threads']} torch thread(s)"
    return f"{device}; torch {m['torch']}; {m['date']}; `{report['command']}`"


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or [RESULTS / "kernels-cpu.json", RESULTS / "training-cpu.json"]
    for path in paths:
        report = json.loads(path.read_text())
        print(training(report) if "settings" in report else kernels(report), end="\n\n")


if __name__ == "__main__":
    main()
