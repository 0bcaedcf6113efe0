"""Prints the corpus' track list per set as Markdown (pasted into README.md)."""
import json
import os
import sys

path = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/montage/beat-corpus/manifest.json")
with open(path) as f:
    m = json.load(f)
for st in ("tuning", "reporting"):
    rows = [t for t in m["tracks"] if t["set"] == st]
    print(f"\n### {st.upper()} ({len(rows)} tracks)\n")
    print("| track | meter | BPM (beat) | genre | drums | stratum | source |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in rows:
        lo, hi = t["bpm_range"]
        bpm = f"{t['bpm']:.0f}" if hi - lo < 1 else f"{lo:.0f}–{hi:.0f} (median {t['bpm']:.0f})"
        meter = "+".join(t["meters"]) if len(t["meters"]) > 1 else t["meter"]
        print(f"| {t['name']} | {meter} | {bpm} | {t['genre']} | {'yes' if t['drums'] else 'no'} "
              f"| {t['stratum']} | {t['source']} |")
if m.get("dropped"):
    print("\nDropped by the build: " + "; ".join(f"{d['name']} ({d['reason']})" for d in m["dropped"]))
