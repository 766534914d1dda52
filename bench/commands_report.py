#!/usr/bin/env python3
"""Writes the Markdown report and chart of bench/commands.sh (standard
library only).

    commands_report.py RESULTS ROWS MACHINE OUT_MD OUT_SVG

RESULTS is a JSON-lines file, one run a line: row, server, rep, ok, and
result ({"tests": {name: figure}}: requests per second per redis-benchmark
test, or rss_mb for a memory row; and for a load row "cpu_ns": {name: the
server's CPU time per request}) or error. ROWS is a JSON list of the rows
(row, label, command); MACHINE the machine and run description
(bench/lib.sh machine_json).
"""

import json
import math
import os
import statistics
import sys
from html import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt, load_and_cores, machine_lines  # noqa: E402 (bench/report.py)

SERVERS = ("redis", "herald")
GOAL = 1.0  # herald / redis ops/s at least this; memory: at most this
AIM = 1.3  # what the -P 16 rows aim at


def lines_of(rows, runs):
    """One line per (row, test): medians, ratio, verdict."""
    out = []
    for row in rows:
        rid = row["row"]
        mine = [r for r in runs if r["row"] == rid]
        ok = [r for r in mine if r.get("ok")]
        tests = []
        for r in ok:
            for t in r["result"]["tests"]:
                if t not in tests:
                    tests.append(t)
        memory = rid.startswith("mem-")
        # redis-benchmark's set-up test for LRANGE measures nothing asked for.
        tests = [t for t in tests if "needed to benchmark" not in t]
        for t in tests:
            per = {}
            for s in SERVERS:
                vals = [r["result"]["tests"][t] for r in ok
                        if r["server"] == s and t in r["result"]["tests"]]
                per[s] = (statistics.median(vals) if vals else None, sorted(vals))
            cpu = {}
            for s in SERVERS:
                vals = [r["result"].get("cpu_ns", {}).get(t) for r in ok if r["server"] == s]
                vals = [v for v in vals if v is not None]
                cpu[s] = statistics.median(vals) if vals else None
            r_med, h_med = per["redis"][0], per["herald"][0]
            ratio = h_med / r_med if (r_med and h_med is not None) else None
            if memory:
                label = row["label"]
                # Lower is better: the advantage is redis / herald.
                adv = (1 / ratio) if ratio else None
            else:
                pipe = rid.rsplit("-p", 1)[-1] if "-p" in rid else rid.lstrip("p")
                name = t if rid in ("p16", "p1") else row["label"].rsplit(",", 1)[0]
                label = f"{name}, -P {pipe}"
                adv = ratio
            out.append({"row": rid, "test": t, "label": label, "memory": memory,
                        "redis": r_med, "herald": h_med, "ratio": ratio, "adv": adv,
                        "runs": per, "cpu": cpu, "failed": len(mine) - len(ok)})
    return out


def chart_svg(items, title):
    """Horizontal bars of herald's advantage per line, log scale."""
    bar_h, gap, left, width = 16, 6, 330, 460
    top = 50
    height = top + len(items) * (bar_h + gap) + 50
    lo, hi = 1 / 4, 4.0

    def x(v):
        v = min(max(v, lo), hi)
        return left + (math.log2(v) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) * width

    p = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
         f'font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
         '<text x="10" y="36" fill="#555">bar: herald / redis-server, median ops/s '
         '(memory: redis / herald RSS growth); log scale; &gt; 1 = herald better; '
         'green: goal met</text>']
    for t in (0.25, 0.5, 1, 2, 4):
        xx = x(t)
        p.append(f'<line x1="{xx:.1f}" y1="{top - 5}" x2="{xx:.1f}" y2="{height - 35}" '
                 f'stroke="{"#000" if t == 1 else "#ddd"}"/>')
        p.append(f'<text x="{xx:.1f}" y="{height - 20}" text-anchor="middle">{t:g}</text>')
    for i, s in enumerate(items):
        y = top + i * (bar_h + gap)
        label = s["label"]
        if len(label) > 50:
            label = label[:49] + "…"
        p.append(f'<text x="{left - 8}" y="{y + bar_h * 0.8:.1f}" text-anchor="end">'
                 f'{escape(label)}</text>')
        adv = s["adv"]
        if adv is not None:
            color = "#2e8b57" if adv >= GOAL else "#c0392b"
            x0, x1 = sorted((x(1), x(adv)))
            p.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{bar_h}" fill="{color}"/>')
            p.append(f'<text x="{max(x(adv), x(1)) + 4:.1f}" y="{y + bar_h * 0.8:.1f}">'
                     f'{adv:.2f}×</text>')
    p.append("</svg>")
    return "\n".join(p) + "\n"


def render(results_path, rows_path, machine_path, out_md, out_svg):
    with open(results_path, encoding="utf-8") as f:
        runs = [json.loads(line) for line in f if line.strip()]
    with open(rows_path, encoding="utf-8") as f:
        rows = json.load(f)
    with open(machine_path, encoding="utf-8") as f:
        m = json.load(f)
    quick = m.get("quick")
    items = lines_of(rows, runs)
    md = ["# Benchmarks: per-command speed and memory, herald against redis-server", "",
          "Written by `bench/commands.sh`" + (" in **quick mode** (one short run per row, "
                                              "small data: checks the machinery, measures "
                                              "nothing)" if quick else "") + ". "
          "Each row ran alternately on both servers, each run on a freshly started server, "
          f"{m.get('repeat')} time(s); the tables show the medians. `redis-benchmark` ran on "
          "the same machine, so it competes with the server for the cores. "
          f"Goals: herald / redis ≥ {GOAL:g}× ops/s on every command row (aim: ≥ {AIM:g}× "
          f"with -P 16), RSS growth herald / redis ≤ {GOAL:g}× on every memory row.",
          "",
          f"![herald / redis-server per command]({os.path.basename(out_svg)})", "",
          *machine_lines(m)]
    busy, cores = load_and_cores(m)
    if cores and busy and max(busy) > cores / 2:
        md += [f"**Noisy run**: the 1-minute load average ({max(busy):g}) shows other work on "
               f"the {cores} cores besides the server and redis-benchmark: the figures are "
               "noisy (see the spread of the runs).", ""]

    def verdict(it):
        if it["ratio"] is None:
            return "no data"
        if quick:
            return "quick mode"
        return "met" if it["adv"] >= GOAL else "missed"

    speed = [it for it in items if not it["memory"]]
    mem = [it for it in items if it["memory"]]
    sections = [
        (speed, ["## Commands (ops/s)", ""], "command"),
        (mem, ["## Memory (RSS growth, MB)", "",
               "RSS after loading the data (and a second's pause) minus RSS at start."
               + (f" Quick mode: the data is {m.get('mem_div')}× smaller than the labels say."
                  if quick else ""), ""], "data"),
    ]
    for section, head, first in sections:
        if not section:
            continue
        cpu_cols = section is speed
        md += head
        if cpu_cols:
            md += ["The CPU columns: the server's CPU time per request (all its threads), "
                   "median of the runs; redis / herald > 1 means herald spent less. It is "
                   "the steadier figure when other work shares the cores.", ""]
        md += [f"| {first} | redis-server | herald | herald / redis | verdict "
               + ("| CPU ns/request, redis / herald | CPU redis / herald " if cpu_cols else "")
               + "| runs, redis | runs, herald |",
               "|---|---|---|---|---|" + ("---|---|" if cpu_cols else "") + "---|---|"]
        for it in section:
            failed = f" ({it['failed']} run(s) failed)" if it["failed"] else ""
            ratio = "–" if it["ratio"] is None else f"{it['ratio']:.2f}×"
            cells = ""
            if cpu_cols:
                rc, hc = it["cpu"]["redis"], it["cpu"]["herald"]
                both = rc is not None and hc is not None and hc > 0
                cells = f"{fmt(rc)} / {fmt(hc)} | " + (f"{rc / hc:.2f}× | " if both else "– | ")
            md.append(f"| {it['label']}{failed} | {fmt(it['redis'])} | {fmt(it['herald'])} | "
                      f"{ratio} | {verdict(it)} | {cells}"
                      f"{', '.join(fmt(v) for v in it['runs']['redis'][1]) or '–'} | "
                      f"{', '.join(fmt(v) for v in it['runs']['herald'][1]) or '–'} |")
        md.append("")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        md += ["Failed runs (left out of the medians):", ""]
        md += [f"- {r['row']} on {r['server']} (run {r['rep']}): {r.get('error')}"
               for r in failed]
        md.append("")
    md += ["## Commands", "",
           "Servers (P is a free port, a fresh server per run):", "",
           f"- `{m.get('redis_flags')}`",
           f"- `{m.get('herald_flags')}`", "",
           "Per row (the stream rows load their data first with `redis-cli --pipe`, see "
           "`bench/commands.sh`):", ""]
    md += [f"- {row['row']}: `{row['command']}`" for row in rows]
    md += ["", "After each load run `INFO stats` must show `total_error_replies:0` "
           "(redis-benchmark counts error replies as successes); a run with errors is "
           "failed.", ""]
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    with open(out_svg, "w", encoding="utf-8") as f:
        f.write(chart_svg(items, "herald against redis-server, per command"
                          + (" (quick mode)" if quick else "")))


def main(argv):
    if len(argv) != 6:
        sys.stderr.write(__doc__)
        return 2
    render(*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
