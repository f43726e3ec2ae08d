"""Markdown tables from the run lines benchmarks/parity.py printed, without training anything.

    python benchmarks/parity_report.py docs/results/parity-runs/td3bc-hopper-v5-medium.jsonl
    python benchmarks/parity_report.py RUNS.jsonl --per-seed     # also each seed's windows

Per algorithm in the file: the final and best returns per seed with both curves, the means ±
population std over the seeds both sides finished (parity.py's comparison rule: the means differ
by at most the larger seed std), and the training quantities of each evaluation window
(`train_means`: seed means, diffrl / official, with diffrl's relative difference). Seeds that
only one side finished are listed but left out of the comparison, so a sweep in progress can be
reported as it stands.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

_PARITY = Path(__file__).resolve().parent / "parity.py"


def _parity_module() -> Any:
    # the comparison rule lives in parity.py; loaded from its path as benchmarks/ is no package
    spec = importlib.util.spec_from_file_location("parity_script", _PARITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_runs(path: Path) -> dict[str, dict[tuple[str, int], dict[str, Any]]]:
    """algo -> (impl, seed) -> run line; a later line for the same run replaces an earlier one."""
    runs: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as err:
            raise SystemExit(f"{path}:{number}: not a JSON line ({err.msg})") from None
        if line.get("kind") != "run":
            continue
        missing = [k for k in ("algo", "impl", "seed", "curve") if k not in line]
        if missing:
            raise SystemExit(f"{path}:{number}: a run line needs {missing}; found {sorted(line)}")
        runs.setdefault(line["algo"], {})[(line["impl"], line["seed"])] = line
    return runs


def _curve(run: dict[str, Any] | None) -> str:
    return ", ".join(f"{v:.0f}" for _, v in run["curve"]) if run else ""


def _final(run: dict[str, Any] | None) -> str:
    return f"{run['curve'][-1][1]:.0f}" if run else "not finished"


def seed_table(runs: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    seeds = sorted({seed for _, seed in runs})
    rows = [
        "| seed | diffrl final | official final | diffrl curve | official curve |",
        "|---|---|---|---|---|",
    ]
    for s in seeds:
        a, b = runs.get(("diffrl", s)), runs.get(("official", s))
        rows.append(f"| {s} | {_final(a)} | {_final(b)} | {_curve(a)} | {_curve(b)} |")
    return rows


def _pair(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "—"
    rel = f" ({100 * (a - b) / abs(b):+.1f} %)" if b else ""
    return f"{a:.5g} / {b:.5g}{rel}"


def window_table(ours: list[dict], theirs: list[dict], steps: list[int]) -> list[str]:
    """Per window: each training quantity, diffrl / official (diffrl's relative difference)."""
    names = list(dict.fromkeys(k for row in ours + theirs for k in row))
    if not names:
        return []
    rows = ["| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else {}
        b = theirs[i] if i < len(theirs) else {}
        step = steps[i] if i < len(steps) else i + 1
        rows.append(f"| {step} | " + " | ".join(_pair(a.get(n), b.get(n)) for n in names) + " |")
    return rows


def report(
    algo: str, runs: dict[tuple[str, int], dict[str, Any]], per_seed: bool, last: int = 1
) -> list[str]:
    parity = _parity_module()
    both = sorted(s for impl, s in runs if impl == "diffrl" and ("official", s) in runs)
    out = [f"### {algo}", "", *seed_table(runs), ""]
    if not both:
        return [*out, "No seed has finished on both sides yet.", ""]
    line = parity.compare([runs[(impl, s)] for s in both for impl in ("diffrl", "official")], last)
    score = "final" if last == 1 else f"mean of the last {last} evaluations"
    for impl in ("diffrl", "official"):
        r = line[impl]
        out.append(f"{impl}: {score} {r['final_mean']:.1f} ± {r['final_std']:.1f} "
                   f"(n={len(both)}), best {r['best_mean']:.1f}")  # fmt: skip
        out.append("")
    verdict = "within" if line["within_seed_spread"] else "**not within**"
    out += [f"difference {line['final_difference']:.1f}: {verdict} the seeds' spread", ""]
    if line["welch"]:
        w = line["welch"]
        which = "final" if last == 1 else "seeds'"
        out += [f"Welch's t-test of the {which} means: p = {w['p']:.3f} (t = {w['t']:.2f}, "
                f"df = {w['df']:.1f}; 95 % CI of the difference {w['ci95'][0]:.1f} to "
                f"{w['ci95'][1]:.1f})", ""]  # fmt: skip
    steps = [step for step, _ in runs[("diffrl", both[0])]["curve"]]
    table = window_table(line["diffrl"]["train_means"], line["official"]["train_means"], steps)
    if table:
        out += ["Training quantities per window, seed means, diffrl / official:", "", *table, ""]
    if per_seed:
        for s in both:
            mine = runs[("diffrl", s)].get("train_means") or []
            theirs = runs[("official", s)].get("train_means") or []
            if mine or theirs:
                out += [f"Seed {s}:", "", *window_table(mine, theirs, steps), ""]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, help="JSON lines printed by benchmarks/parity.py")
    p.add_argument("--per-seed", action="store_true", help="each seed's window table too")
    p.add_argument("--last", type=int, default=1, metavar="K",
                   help="score each seed by the mean of its last K evaluations (default 1: the "
                        "final one)")  # fmt: skip
    args = p.parse_args()
    if not args.runs.is_file():
        p.error(f"{args.runs}: no such file")
    runs = read_runs(args.runs)
    if not runs:
        raise SystemExit(f"{args.runs}: no run lines (kind 'run') in it")
    for algo in sorted(runs):
        print("\n".join(report(algo, runs[algo], args.per_seed, args.last)))


if __name__ == "__main__":
    main()
