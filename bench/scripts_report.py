#!/usr/bin/env python3
"""Writes the Markdown report of bench/scripts.sh (standard library only).

    scripts_report.py RESULTS ROWS MACHINE OUT_MD

RESULTS is a JSON-lines file, one run a line: row, server, rep, ok, and
result (rps, p50_ms, p99_ms) or error. ROWS is a JSON list of the rows
(row, label, command); MACHINE the machine and run description
(bench/lib.sh machine_json).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import fmt, load_and_cores, machine_lines, median_of  # noqa: E402 (bench/report.py)

SERVERS = ("redis", "herald")
GOAL = 1.0


def cmd_render(results_path, rows_path, machine_path, out_md):
    with open(results_path, encoding="utf-8") as f:
        runs = [json.loads(line) for line in f if line.strip()]
    with open(rows_path, encoding="utf-8") as f:
        rows = json.load(f)
    with open(machine_path, encoding="utf-8") as f:
        m = json.load(f)
    quick = m.get("quick")
    md = ["# Benchmarks: Lua scripting (EVALSHA), herald against redis-server", "",
          "Written by `bench/scripts.sh`" + (" in **quick mode** (one short run per row: "
                                             "checks the machinery, measures nothing)"
                                             if quick else "") + ". "
          "Each row ran alternately on both servers, each run on a freshly started server "
          f"with the script cached by `SCRIPT LOAD`, {m.get('repeat')} time(s); the table "
          "shows the medians of `redis-benchmark`'s requests per second (each request is one "
          "EVALSHA, that is one script run). `redis-benchmark` ran on the same machine. "
          f"Goal: herald / redis ≥ {GOAL:g}× on every row.",
          "",
          *machine_lines(m)]
    busy, cores = load_and_cores(m)
    if cores and busy and max(busy) > cores:
        md += [f"**Noisy run**: the 1-minute load average ({max(busy):g}) exceeded the "
               f"{cores} cores: other work shared the machine with both servers and "
               "redis-benchmark, so the figures are noisy (see the spread of the runs). "
               "Rerun on a quiet machine for figures to quote.", ""]
    md += ["## Results", "",
          "| row | redis-server ops/s | herald ops/s | herald / redis | goal | verdict "
          "| p50 ms redis / herald | runs, redis (ops/s) | runs, herald (ops/s) |",
          "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        rid = row["row"]
        per = {}
        for s in SERVERS:
            mine = [r for r in runs if r["row"] == rid and r["server"] == s]
            ok = [r["result"] for r in mine if r.get("ok")]
            per[s] = {"ok": ok, "total": len(mine),
                      "rps": median_of(ok, "rps"), "p50": median_of(ok, "p50_ms"),
                      "all": ", ".join(fmt(r["rps"]) for r in sorted(
                          ok, key=lambda r: r["rps"])) or "–"}
        r, h = per["redis"]["rps"], per["herald"]["rps"]
        ratio = h / r if (r and h is not None) else None
        if ratio is None:
            verdict = "no data"
        elif quick:
            verdict = "quick mode (does not count)"
        else:
            verdict = "met" if ratio >= GOAL else "missed"
        counts = "".join(f" ({per[s]['total'] - len(per[s]['ok'])} {s} run(s) failed)"
                         for s in SERVERS if len(per[s]["ok"]) < per[s]["total"])
        md.append(f"| {rid}: {row['label']}{counts} | {fmt(r)} | {fmt(h)} | "
                  f"{'–' if ratio is None else f'{ratio:.2f}×'} | ≥ {GOAL:g}× | {verdict} | "
                  f"{fmt(per['redis']['p50'])} / {fmt(per['herald']['p50'])} | "
                  f"{per['redis']['all']} | {per['herald']['all']} |")
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        md += ["", "Failed runs (left out of the medians):", ""]
        md += [f"- {r['row']} on {r['server']} (run {r['rep']}): {r.get('error')}"
               for r in failed]
    md += ["", "## The scripts", "",
           "`small` (`EVALSHA <sha> 1 key:__rand_int__`):", "", "```lua",
           m.get("small_script", ""), "```", "",
           "`ten`, 10 `redis.call`s (`EVALSHA <sha> 3 {bench}:n:__rand_int__ "
           "{bench}:s:__rand_int__ {bench}:h:__rand_int__`): every key it touches is "
           "declared in KEYS and the three share the hash tag `{bench}`, so the script is "
           "legal in a cluster too. redis-benchmark draws each `__rand_int__` on its own "
           "(0 to 99,999).", "", "```lua", m.get("ten_script", ""), "```", "",
           "## Commands", "",
           "Servers (P is a free port, a fresh server per run):", "",
           f"- `{m.get('redis_flags')}`",
           f"- `{m.get('herald_flags')}`", "",
           "Per run: `redis-cli -h 127.0.0.1 -p P SCRIPT LOAD \"<script>\"`, one checked "
           "`EVALSHA` on other keys, then (`<sha>` the SHA1 SCRIPT LOAD returned):", ""]
    md += [f"- {row['row']}: `{row['command']}`" for row in rows]
    md += ["", "After each run `INFO stats` must show `total_error_replies:0` (redis-benchmark "
           "counts error replies as successes); a run with errors is failed.", ""]
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    cmd_render(*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
