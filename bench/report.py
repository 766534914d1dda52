#!/usr/bin/env python3
"""Helpers of bench/compare.sh (standard library only).

    report.py median RESULTS ROW SERVER FIELD
        prints the median of a numeric field of a row's successful runs
        (used for row 8's rate); prints nothing if there is none.
    report.py render RESULTS MACHINE OUT_MD OUT_SVG
        writes the Markdown report and the SVG chart.

RESULTS is a JSON-lines file written by compare.sh: one {"kind": "row", ...}
line per matrix row (id, label, args) and one {"kind": "run", ...} line per
run (row, server, rep, ok, and either result or error). MACHINE is a JSON
file with the machine and run description.
"""

import json
import math
import statistics
import sys
from html import escape

# Per row id: (metric, unit, higher_is_better, target ratio herald/redis).
# For lower-is-better metrics the target is a maximum ratio.
METRICS = {
    "1a": ("published_per_s", "publishes/s", True, 1.0),
    "1b": ("published_per_s", "publishes/s", True, 1.0),
    "2": ("delivered_per_s", "deliveries/s", True, 1.0),
    "3": ("delivered_per_s", "deliveries/s", True, 1.5),
    "4": ("delivered_per_s", "deliveries/s", True, 1.5),
    "5": ("delivered_per_s", "deliveries/s", True, 5.0),
    "6": ("delivered_per_s", "deliveries/s", True, 1.5),
    "7": ("delivered_per_s", "deliveries/s", True, 1.0),
    "8": ("latency_us.p99", "p99 µs", False, 1.0),
    "9a": ("delta_kb", "KiB RSS", False, 1.0),
    "9b": ("delta_kb", "KiB RSS", False, 1.0),
    "10": ("delivered_per_s", "deliveries/s", True, 1.0),
}
SERVERS = ("redis", "herald")


def load(path):
    rows, runs = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            (rows if rec.get("kind") == "row" else runs).append(rec)
    return rows, runs


def field(result, name):
    """A dotted field of a run's result, or None."""
    cur = result
    for part in name.split("."):
        if not isinstance(cur, dict) or cur.get(part) is None:
            return None
        cur = cur[part]
    return cur if isinstance(cur, (int, float)) else None


def ok_results(runs, row, server):
    return [r["result"] for r in runs
            if r.get("row") == row and r.get("server") == server and r.get("ok")]


def median_of(results, name):
    vals = [v for v in (field(r, name) for r in results) if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if "µs" in unit or unit == "%":  # one decimal below 100
        return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    if float(v).is_integer():
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def machine_lines(m):
    """The "Machine" section of a redis-benchmark report (bench/lib.sh's
    machine_json)."""
    return ["## Machine", "",
            f"- {m.get('nproc')} cores, {m.get('cpu')}, {m.get('mem')}",
            f"- kernel {m.get('kernel')}",
            f"- {m.get('redis_version')}; {m.get('benchmark_version')}",
            f"- herald {m.get('herald_version')}; {m.get('rustc')}",
            f"- load average (1, 5, 15 min) {m.get('load_start')} at the start, "
            f"{m.get('load_end')} at the end",
            f"- run on {m.get('date')}, took {m.get('elapsed_s')} s", ""]


def load_and_cores(m):
    """The 1-minute load averages at the start and end of a run, and the
    core count (0 if unknown): whether other work shared the machine."""
    busy = [float(str(m.get(k, "")).split()[0]) for k in ("load_start", "load_end")
            if str(m.get(k, "")).split()]
    cores = int(m["nproc"]) if str(m.get("nproc", "")).isdigit() else 0
    return busy, cores


def cmd_median(path, row, server, name):
    _, runs = load(path)
    m = median_of(ok_results(runs, row, server), name)
    if m is not None:
        print(m)


def summarize(rows, runs):
    """Per row: medians per server, ratio, verdict and flags."""
    out = []
    for row in rows:
        rid = row["row"]
        metric, unit, higher, target = METRICS.get(rid, ("delivered_per_s", "", True, 1.0))
        per = {}
        for s in SERVERS:
            res = ok_results(runs, rid, s)
            total = sum(1 for r in runs if r.get("row") == rid and r.get("server") == s)
            errors = [r.get("error", "") for r in runs
                      if r.get("row") == rid and r.get("server") == s and not r.get("ok")]
            saturated = sum(1 for r in res if r.get("saturated"))
            lost = sum(1 for r in res if (r.get("lost") or 0) > 0 or (r.get("disconnects") or 0) > 0)
            per[s] = {
                "n": len(res), "total": total, "errors": errors,
                "saturated": saturated, "lossy": lost,
                "value": median_of(res, metric),
                "res": res,
            }
        r, h = per["redis"]["value"], per["herald"]["value"]
        ratio = h / r if (r and h is not None) else None
        # Work per message, whoever was the bottleneck: deliveries (or
        # publishes) per second of server CPU, from --server-pid.
        er = median_of(per["redis"]["res"], "delivered_per_server_cpu_s")
        eh = median_of(per["herald"]["res"], "delivered_per_server_cpu_s")
        efficiency = eh / er if (er and eh is not None) else None
        flags = []
        for s in SERVERS:
            p = per[s]
            if p["saturated"]:
                flags.append(f"{s}: generator saturated in {p['saturated']}/{p['n']} runs")
            if p["lossy"]:
                flags.append(f"{s}: losses or disconnects in {p['lossy']}/{p['n']} runs")
            if p["errors"]:
                flags.append(f"{s}: {len(p['errors'])}/{p['total']} runs failed ({p['errors'][0]})")
        if ratio is None:
            verdict = "no data"
        elif any(per[s]["saturated"] for s in SERVERS):
            verdict = "does not count (generator saturated)"
        else:
            met = ratio >= target if higher else ratio <= target
            verdict = "met" if met else "missed"
        # The chart plots the herald advantage: > 1 means herald is better.
        adv = None
        if ratio:
            adv = ratio if higher else 1.0 / ratio
        out.append({
            "row": rid, "label": row.get("label", ""), "args": row.get("args", ""),
            "metric": metric, "unit": unit, "higher": higher, "target": target,
            "per": per, "ratio": ratio, "verdict": verdict, "flags": flags,
            "efficiency": efficiency,
            "advantage": adv, "rate": row.get("rate"),
            "server_args": row.get("server_args", ""),
        })
    return out


def chart_svg(summary):
    """Horizontal bars of herald's advantage per row, log scale."""
    items = [s for s in summary]
    bar_h, gap, left, width = 22, 10, 310, 460
    top = 50
    height = top + len(items) * (bar_h + gap) + 50
    lo, hi = 1 / 8, 16.0

    def x(v):
        v = min(max(v, lo), hi)
        return left + (math.log2(v) - math.log2(lo)) / (math.log2(hi) - math.log2(lo)) * width

    p = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
         f'font-family="sans-serif" font-size="12">',
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">herald advantage over '
         'redis-server (×, log scale; &gt; 1 = herald better)</text>',
         '<text x="10" y="36" fill="#555">bar: median ratio (inverted for latency and memory); '
         'dashed tick: target; grey: generator saturated</text>']
    for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16):
        xx = x(t)
        p.append(f'<line x1="{xx:.1f}" y1="{top - 5}" x2="{xx:.1f}" y2="{height - 35}" '
                 f'stroke="{"#000" if t == 1 else "#ddd"}"/>')
        p.append(f'<text x="{xx:.1f}" y="{height - 20}" text-anchor="middle">{t:g}</text>')
    for i, s in enumerate(items):
        y = top + i * (bar_h + gap)
        label = f'{s["row"]}. {s["label"]}'
        if len(label) > 46:
            label = label[:45] + "…"
        p.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7:.1f}" text-anchor="end">'
                 f'{escape(label)}</text>')
        adv = s["advantage"]
        if adv is not None:
            color = {"met": "#2e8b57", "missed": "#c0392b"}.get(s["verdict"], "#999")
            x0, x1 = sorted((x(1), x(adv)))
            p.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                     f'fill="{color}"/>')
            p.append(f'<text x="{max(x(adv), x(1)) + 4:.1f}" y="{y + bar_h * 0.7:.1f}">'
                     f'{adv:.2f}×</text>')
        tgt = s["target"] if s["higher"] else 1 / s["target"]
        xt = x(tgt)
        p.append(f'<line x1="{xt:.1f}" y1="{y - 2}" x2="{xt:.1f}" y2="{y + bar_h + 2}" '
                 f'stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>')
    p.append("</svg>")
    return "\n".join(p) + "\n"


def detail_rows(summary):
    cols = [("published/s", "published_per_s", ""), ("delivered/s", "delivered_per_s", ""),
            ("MB/s", "delivered_mb_per_s", ""), ("p50 µs", "latency_us.p50", "µs"),
            ("p99 µs", "latency_us.p99", "µs"), ("p99.9 µs", "latency_us.p999", "µs"),
            ("lost", "lost", ""), ("disc.", "disconnects", ""),
            ("gen CPU %", "cpu_percent", "%"),
            ("gen busiest thread %", "busiest_thread_cpu_percent", "%"),
            ("server CPU %", "server_cpu_percent", "%"),
            ("per server CPU-s", "delivered_per_server_cpu_s", "")]
    lines = ["| row | server | runs | " + " | ".join(c[0] for c in cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]
    for s in summary:
        if s["metric"] == "delta_kb":
            continue
        for srv in SERVERS:
            p = s["per"][srv]
            vals = [fmt(median_of(p["res"], c[1]), c[2]) for c in cols]
            lines.append(f'| {s["row"]} | {srv} | {p["n"]}/{p["total"]} | ' + " | ".join(vals) + " |")
    return lines


def memory_rows(summary):
    lines = ["| row | server | runs | empty server RSS (KiB) | loaded RSS (KiB) | difference (KiB) "
             "| per connection (B) |", "|---|---|---|---|---|---|---|"]
    for s in summary:
        if s["metric"] != "delta_kb":
            continue
        for srv in SERVERS:
            p = s["per"][srv]
            conns = median_of(p["res"], "hold.connections")
            delta = median_of(p["res"], "delta_kb")
            per_conn = (delta * 1024 / conns) if (delta is not None and conns) else None
            lines.append(f'| {s["row"]} | {srv} | {p["n"]}/{p["total"]} | '
                         f'{fmt(median_of(p["res"], "rss_empty_kb"))} | '
                         f'{fmt(median_of(p["res"], "rss_kb"))} | {fmt(delta)} | {fmt(per_conn)} |')
    return lines


def slow_rows(summary):
    """Row 10 against row 2: the fast subscribers with and without slow ones."""
    by_id = {s["row"]: s for s in summary}
    if "10" not in by_id:
        return []
    lines = ["", "### Slow subscribers (row 10 against row 2)", "",
             "Row 10 is row 2 plus 5 subscribers that stop reading when the measured "
             "window starts; both servers run with `client-output-buffer-limit pubsub 1mb 0 0`. "
             "delivered/s and latency are the 50 reading subscribers'; \"cut off\" counts "
             "the slow ones the server disconnected, and when (seconds after they stopped "
             "reading, first to last, polled every 100 ms).", "",
             "| server | published/s (2 → 10) | delivered/s (2 → 10) | p50 µs (2 → 10) "
             "| p99 µs (2 → 10) | p99.9 µs (2 → 10) | lost (10) | cut off (10) | when (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for srv in SERVERS:
        r10 = by_id["10"]["per"][srv]["res"]
        r2 = by_id["2"]["per"][srv]["res"] if "2" in by_id else []

        def pair(name, unit=""):
            return f'{fmt(median_of(r2, name), unit)} → {fmt(median_of(r10, name), unit)}'
        cut = median_of(r10, "slow.disconnected")
        subs = median_of(r10, "slow.subscribers")
        times = [t for r in r10 for t in ((r.get("slow") or {}).get("cut_off_s") or [])]
        when = f"{min(times):.2f}–{max(times):.2f}" if times else "–"
        lines.append(f'| {srv} | {pair("published_per_s")} | {pair("delivered_per_s")} | '
                     f'{pair("latency_us.p50", "µs")} | {pair("latency_us.p99", "µs")} | '
                     f'{pair("latency_us.p999", "µs")} | {fmt(median_of(r10, "lost"))} | '
                     f'{fmt(cut)} of {fmt(subs)} | {when} |')
    return lines


def cmd_render(results, machine_path, out_md, out_svg):
    rows, runs = load(results)
    with open(machine_path, encoding="utf-8") as f:
        machine = json.load(f)
    summary = summarize(rows, runs)
    with open(out_svg, "w", encoding="utf-8") as f:
        f.write(chart_svg(summary))
    svg_name = out_svg.rsplit("/", 1)[-1]
    md = ["# Benchmarks: herald against redis-server",
          "",
          "Written by `bench/compare.sh`" + (" in **quick mode** (one short run per row, small "
                                             "sizes: checks the machinery, measures nothing)"
                                             if machine.get("quick") else "") + ". "
          "Each row ran alternately on both servers, on a freshly started server, "
          f"{machine.get('repeat')} time(s); the table shows medians. The load generator is "
          "`herald-bench` (`bench/src/`, its own crate), run on the same machine with "
          f"`--threads {machine.get('bench_threads')}`.",
          "",
          "## Machine",
          "",
          f"- {machine.get('nproc')} cores, {machine.get('cpu')}, {machine.get('mem')}",
          f"- kernel {machine.get('kernel')}",
          f"- {machine.get('redis_version')}",
          f"- herald {machine.get('herald_version')}; {machine.get('rustc')}",
          f"- redis-server flags: `{machine.get('redis_flags')}`",
          f"- herald flags: `{machine.get('herald_flags')}`",
          ]
    if machine.get("herald_dropped"):
        md.append(f"- options herald refused (dropped from its command line): "
                  f"`{machine.get('herald_dropped')}`")
    md += [f"- run on {machine.get('date')}, took {machine.get('elapsed_s')} s", "",
           "## Results", "",
           f"![herald advantage per row]({svg_name})", "",
           "| row | shape | metric | redis-server | herald | herald / redis | target | verdict "
           "| per server CPU-second, herald / redis |",
           "|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        r, h = s["per"]["redis"]["value"], s["per"]["herald"]["value"]
        ratio = f'{s["ratio"]:.2f}×' if s["ratio"] is not None else "–"
        tgt = (f'≥ {s["target"]:g}×' if s["higher"] else f'≤ {s["target"]:g}× (lower is better)')
        label = s["label"] + (f' (rate {s["rate"]:,.0f}/s)' if s.get("rate") else "")
        eff = f'{s["efficiency"]:.2f}×' if s.get("efficiency") is not None else "–"
        md.append(f'| {s["row"]} | {label} | {s["unit"]} | {fmt(r, s["unit"])} | '
                  f'{fmt(h, s["unit"])} | {ratio} | {tgt} | {s["verdict"]} | {eff} |')
    flags = [(s["row"], f) for s in summary for f in s["flags"]]
    if flags:
        md += ["", "Flags (a run counts as generator-saturated when the generator's busiest "
               "runtime thread was busy more than 90% of the measured window):", ""]
        md += [f"- row {r}: {f}" for r, f in flags]
    md += ["", "The last column divides each server's messages (deliveries, or publishes in "
           "row 1) by the CPU time the server process used in the measured window "
           "(`/proc/PID/stat`, `herald-bench --server-pid`): how much a message costs the "
           "server, which still compares the two when the generator, sharing the machine's "
           "cores, is what limits the rate."]
    md += ["", "### All medians", ""] + detail_rows(summary)
    md += ["", "### Memory (row 9)", "",
           "RSS from `/proc/PID/status` (VmRSS) once every connection and subscription is "
           "established, minus the RSS of the same server freshly started and empty.", ""]
    md += memory_rows(summary)
    md += slow_rows(summary)
    md += ["", "### Row shapes (herald-bench arguments)", "",
           "Publishers pick each publish's channel uniformly at random (`--spread random`, the "
           "default since 2026-11-22; a fixed seed per publisher). Runs before that date went "
           "round-robin with the publishers nearly in step, which let a subscriber receive one "
           "message from each publisher at once and made rows 4, 6 and 7 swing with the "
           "publishers' phase.", ""]
    for s in summary:
        extra = f' (servers also get `{s["server_args"]}`)' if s.get("server_args") else ""
        md.append(f'- {s["row"]}: `{s["args"]}`{extra}')
    md.append("")
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def main(argv):
    if len(argv) == 6 and argv[1] == "median":
        cmd_median(*argv[2:])
    elif len(argv) == 6 and argv[1] == "render":
        cmd_render(*argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
