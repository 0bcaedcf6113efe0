"""Scores beat trackers on the MIDI-rendered corpus (see README.md beside this file).

Usage: score.py [--manifest PATH] [--set tuning|reporting|all] [--trackers montage,librosa,aubio,madmom]
                [--montage BIN] [--json OUT] [--no-cache] [--per-track-reporting]

Per track and tracker: beat F-measure (mir_eval, ±70 ms, beats before 5 s trimmed), CMLt and
AMLt (mir_eval.beat.continuity), downbeat F-measure (same tolerance and trimming), the
estimated BPM, and flags:
  octave     the estimate's median inter-beat interval is 0.5x or 2x the truth's (within 8%)
  x1.5/x0.67 the same for 2:3 and 3:2 (dotted vs plain beat, e.g. quarter vs dotted quarter)
  off-phase  most estimated beats sit near the midpoints between true beats, not on them
Per set: mean F, CMLt, AMLt, downbeat F, tracks with F < 0.80, octave errors, off-phase count.

Per-track lines of the REPORTING set are not printed unless --per-track-reporting is given
(tune on the tuning set only); the --json file holds every figure.
Tracker outputs are cached under <manifest dir>/estimates, keyed by the MP3 and by the tracker
(for montage, by the binary's sha256), so re-runs only compute what changed.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")
for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402

TOL = 0.07
ALL_TRACKERS = ["montage", "librosa", "aubio", "madmom"]


def decode(path, sr):
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "f32le", "-ac", "1",
                          "-ar", str(sr), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


# ---------------------------------------------------------------- trackers

def run_montage(path, binary):
    out = subprocess.run([binary, "analyze", path, "--json"], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    j = json.loads(out)
    return dict(beats=[float(b) for b in j.get("beats", [])],
                downbeats=[float(b) for b in j.get("downbeats", [])],
                bpm=float(j["bpm"]) if j.get("bpm") is not None else None)


def run_librosa(path, _):
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return dict(beats=[float(b) for b in beats], downbeats=None,
                bpm=float(np.atleast_1d(tempo)[0]))


def run_aubio(path, _):
    import aubio

    sr, win, hop = 44100, 1024, 512
    y = decode(path, sr)
    tracker = aubio.tempo("default", win, hop, sr)
    beats = []
    for i in range(0, len(y) - hop + 1, hop):
        if tracker(y[i: i + hop].astype(np.float32))[0]:
            beats.append(float(tracker.get_last_s()))
    return dict(beats=beats, downbeats=None, bpm=float(tracker.get_bpm()))


def run_madmom(path, _):
    from madmom.audio.signal import Signal
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    sig = Signal(decode(path, 44100), sample_rate=44100)
    beats = DBNBeatTrackingProcessor(fps=100)(RNNBeatProcessor()(sig))
    bars = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=100)(RNNDownBeatProcessor()(sig))
    downbeats = [float(t) for t, pos in bars if int(pos) == 1]
    ibi = np.diff(beats)
    return dict(beats=[float(b) for b in beats], downbeats=downbeats,
                bpm=float(60.0 / np.median(ibi)) if len(ibi) else None)


RUNNERS = dict(montage=run_montage, librosa=run_librosa, aubio=run_aubio, madmom=run_madmom)


def available(name, montage_bin):
    try:
        if name == "montage":
            return os.access(montage_bin, os.X_OK), f"no executable at {montage_bin}"
        __import__({"librosa": "librosa", "aubio": "aubio", "madmom": "madmom"}[name])
        return True, ""
    except Exception as e:  # noqa: BLE001
        return False, f"cannot import: {e}"


def tracker_key(name, montage_bin):
    if name == "montage":
        h = hashlib.sha256()
        with open(montage_bin, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return "montage-" + h.hexdigest()[:16]
    mod = __import__(name)
    return f"{name}-{getattr(mod, '__version__', getattr(mod, 'version', '?'))}"


# ---------------------------------------------------------------- metrics

def median_ibi(beats):
    b = np.asarray([x for x in beats if x >= 5.0])
    if len(b) < 3:
        b = np.asarray(beats)
    return float(np.median(np.diff(b))) if len(b) >= 2 else None


def phase_flag(ref, est):
    """True when most estimated beats (past 5 s) sit near midpoints between true beats."""
    ref = np.asarray(ref)
    est = np.asarray([e for e in est if ref[0] <= e < ref[-1] and e >= 5.0])
    if len(est) < 4 or len(ref) < 4:
        return False
    i = np.searchsorted(ref, est, side="right") - 1
    span = ref[i + 1] - ref[i]
    phase = (est - ref[i]) / span
    on = np.mean((phase < 0.2) | (phase > 0.8))
    mid = np.mean(np.abs(phase - 0.5) < 0.2)
    return bool(mid > 0.5 and mid > on)


def ratio_flags(ref, est):
    r, e = median_ibi(ref), median_ibi(est)
    if not r or not e:
        return []
    q = e / r
    flags = []
    for target, label in ((0.5, "octave"), (2.0, "octave"), (1.5, "x1.5"), (2 / 3, "x0.67")):
        if abs(q - target) <= 0.08 * target:
            flags.append(label)
    return flags


def score_track(truth, est):
    ref = mir_eval.beat.trim_beats(np.asarray(truth["beats"], float))
    e = mir_eval.beat.trim_beats(np.asarray(est["beats"], float)) if est["beats"] else np.array([])
    out = {}
    out["f"] = float(mir_eval.beat.f_measure(ref, e, f_measure_threshold=TOL)) if len(e) else 0.0
    if len(e) > 1 and len(ref) > 1:
        _, cmlt, _, amlt = mir_eval.beat.continuity(ref, e)
    else:
        cmlt = amlt = 0.0
    out["cmlt"], out["amlt"] = float(cmlt), float(amlt)
    if est.get("downbeats") is not None:
        rd = mir_eval.beat.trim_beats(np.asarray(truth["downbeats"], float))
        ed = mir_eval.beat.trim_beats(np.asarray(est["downbeats"], float)) if est["downbeats"] else np.array([])
        out["db_f"] = float(mir_eval.beat.f_measure(rd, ed, f_measure_threshold=TOL)) if len(ed) and len(rd) else 0.0
    else:
        out["db_f"] = None
    ibi = median_ibi(est["beats"])
    out["bpm"] = est.get("bpm") or (60.0 / ibi if ibi else None)
    out["bpm_from_beats"] = 60.0 / ibi if ibi else None
    flags = ratio_flags(truth["beats"], est["beats"])
    if phase_flag(truth["beats"], est["beats"]):
        flags.append("off-phase")
    out["flags"] = flags
    return out


def aggregate(rows):
    if not rows:
        return None
    dbs = [r["db_f"] for r in rows if r["db_f"] is not None]
    return dict(
        tracks=len(rows),
        mean_f=float(np.mean([r["f"] for r in rows])),
        mean_cmlt=float(np.mean([r["cmlt"] for r in rows])),
        mean_amlt=float(np.mean([r["amlt"] for r in rows])),
        mean_db_f=float(np.mean(dbs)) if dbs else None,
        below_080=int(sum(r["f"] < 0.80 for r in rows)),
        octave=int(sum("octave" in r["flags"] for r in rows)),
        off_phase=int(sum("off-phase" in r["flags"] for r in rows)),
    )


# ---------------------------------------------------------------- main

def fmt(x, spec="{:.3f}"):
    return "  -  " if x is None else spec.format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=os.path.expanduser("~/.cache/montage/beat-corpus/manifest.json"))
    ap.add_argument("--set", choices=["tuning", "reporting", "all"], default="tuning")
    ap.add_argument("--trackers", default=",".join(ALL_TRACKERS),
                    help="comma-separated; unavailable ones are skipped with a notice")
    ap.add_argument("--montage", default=os.environ.get("MONTAGE_BIN", "target/release/montage"))
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--only", default="", help="comma-separated track names")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--per-track-reporting", action="store_true",
                    help="also print per-track lines of the reporting set (do not tune on them)")
    args = ap.parse_args()

    with open(args.manifest) as f:
        manifest = json.load(f)
    tracks = [t for t in manifest["tracks"] if args.set == "all" or t["set"] == args.set]
    only = set(filter(None, args.only.split(",")))
    if only:
        tracks = [t for t in tracks if t["name"] in only]
    tracks.sort(key=lambda t: t["name"])
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(args.manifest)), "estimates")

    trackers, skipped = [], {}
    for name in [x.strip() for x in args.trackers.split(",") if x.strip()]:
        ok, why = available(name, args.montage)
        if ok:
            trackers.append(name)
        else:
            skipped[name] = why
            print(f"# skipping {name}: {why}", file=sys.stderr)

    results = {}  # tracker -> track -> scores
    for name in trackers:
        key = tracker_key(name, args.montage)
        results[name] = {}
        for t in tracks:
            st = os.stat(t["path"])
            cpath = os.path.join(cache_dir, key, f"{t['name']}-{st.st_size}-{int(st.st_mtime)}.json")
            est = None
            if not args.no_cache and os.path.exists(cpath):
                with open(cpath) as f:
                    est = json.load(f)
            if est is None:
                print(f"# {name}: {t['name']}", file=sys.stderr, flush=True)
                try:
                    est = RUNNERS[name](t["path"], args.montage)
                except Exception as e:  # noqa: BLE001
                    print(f"#   failed: {e}", file=sys.stderr)
                    est = dict(beats=[], downbeats=None, bpm=None, error=str(e))
                else:
                    os.makedirs(os.path.dirname(cpath), exist_ok=True)
                    with open(cpath, "w") as f:
                        json.dump(est, f)
            s = score_track(t, est)
            s["error"] = est.get("error")
            results[name][t["name"]] = s

    sets = ["tuning", "reporting"] if args.set == "all" else [args.set]
    summary = {}
    for name in trackers:
        summary[name] = {}
        for st in sets + (["all"] if args.set == "all" else []):
            rows = [results[name][t["name"]] for t in tracks if st == "all" or t["set"] == st]
            summary[name][st] = aggregate(rows)

    # per-track tables
    for name in trackers:
        for st in sets:
            if st == "reporting" and not args.per_track_reporting:
                continue
            sel = [t for t in tracks if t["set"] == st]
            if not sel:
                continue
            print(f"\n## {name} on the {st} set ({len(sel)} tracks)")
            print(f"{'track':40s} {'meter':5s} {'truth':>6s} {'F':>6s} {'CMLt':>6s} {'AMLt':>6s} {'dbF':>6s} {'bpm':>6s}  flags")
            for t in sel:
                r = results[name][t["name"]]
                print(f"{t['name']:40s} {t['meter']:5s} {t['bpm']:6.1f} {r['f']:6.3f} {r['cmlt']:6.3f} "
                      f"{r['amlt']:6.3f} {fmt(r['db_f'], '{:6.3f}'):>6s} {fmt(r['bpm'], '{:6.1f}'):>6s}  "
                      f"{' '.join(r['flags'])}{'  ERROR ' + r['error'] if r.get('error') else ''}")

    print("\n## summary (F: ±70 ms; means over tracks; dbF over trackers that give downbeats)")
    print(f"{'set':10s} {'tracker':8s} {'n':>3s} {'F':>6s} {'CMLt':>6s} {'AMLt':>6s} {'dbF':>6s} {'F<0.8':>6s} {'octave':>6s} {'offph':>6s}")
    for st in sets + (["all"] if args.set == "all" else []):
        for name in trackers:
            a = summary[name][st]
            if not a:
                continue
            print(f"{st:10s} {name:8s} {a['tracks']:3d} {a['mean_f']:6.3f} {a['mean_cmlt']:6.3f} {a['mean_amlt']:6.3f} "
                  f"{fmt(a['mean_db_f'], '{:6.3f}'):>6s} {a['below_080']:6d} {a['octave']:6d} {a['off_phase']:6d}")
    if skipped:
        print("\nskipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))

    if args.json:
        out = dict(manifest=args.manifest, set=args.set, tolerance_s=TOL, trackers=trackers,
                   skipped=skipped, summary=summary,
                   tracks={t["name"]: dict(set=t["set"], meter=t["meter"], bpm=t["bpm"], genre=t["genre"],
                                           drums=t["drums"], scores={n: results[n][t["name"]] for n in trackers})
                           for t in tracks})
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
