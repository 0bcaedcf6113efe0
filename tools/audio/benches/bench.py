"""Beat accuracy and analysis speed of montage-audio beside aubio's causal tracker and librosa.

Run by scripts/bench-audio, which builds the Rust side and provides a venv with librosa.
Arguments: the montage binary, the beat_bench example, a scratch directory.
Accuracy: mir_eval's F-measure (±70 ms, beats before 5 s ignored) on synthetic tracks the
tracker was not tuned on. Speed: decode and analyse a 3-minute 44.1 kHz stereo MP3 on one
core (best of several runs), and peak memory (max RSS of the process), with librosa doing the
same work (load + beat_track) in the same run.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402

TOLERANCE = 0.07
SKIP = 5.0


def f_measure(reference, estimated):
    """mir_eval.beat.f_measure: beats before 5 s dropped, matches within ±70 ms."""
    reference = [b for b in reference if b >= SKIP]
    estimated = [b for b in estimated if b >= SKIP]
    if not reference or not estimated:
        return 0.0
    used = set()
    hits = 0
    # The window is far narrower than half a beat, so matching each reference beat to the
    # nearest unused estimate gives mir_eval's maximum matching.
    for r in reference:
        best = None
        for j, e in enumerate(estimated):
            if j in used or abs(e - r) > TOLERANCE:
                continue
            if best is None or abs(e - r) < abs(estimated[best] - r):
                best = j
        if best is not None:
            used.add(best)
            hits += 1
    precision = hits / len(estimated)
    recall = hits / len(reference)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def run_json(command):
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def librosa_beats(path):
    y, sr = librosa.load(path, sr=22050, mono=True)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return [float(b) for b in beats]


def accuracy(example, scratch):
    suite = os.path.join(scratch, "suite")
    subprocess.run([example, "suite", suite], check=True)
    with open(os.path.join(suite, "truth.json")) as f:
        truth = json.load(f)
    files = [os.path.join(suite, name) for name in truth]
    trackers = {
        "montage-audio": run_json([example, "ours", *files]),
        "aubio (causal)": run_json([example, "aubio", *files]),
        "librosa": {path: librosa_beats(path) for path in files},
    }
    categories = sorted({t["category"] for t in truth.values()})
    scores = {name: {c: [] for c in categories} for name in trackers}
    per_file = {}
    for name, beats in trackers.items():
        for path in files:
            t = truth[os.path.basename(path)]
            f = f_measure(t["beats"], beats[path])
            scores[name][t["category"]].append(f)
            per_file[(name, os.path.basename(path))] = f
    print(f"\nBeat F-measure on {len(files)} synthetic tracks (mir_eval definition)")
    print(f"{'category':<14}{'tracks':>7}" + "".join(f"{n:>17}" for n in trackers))
    for c in categories:
        n = len(scores["librosa"][c])
        print(f"{c:<14}{n:>7}" + "".join(f"{statistics.mean(scores[t][c]):>17.3f}" for t in trackers))
    print(f"{'all':<14}{len(files):>7}" + "".join(
        f"{statistics.mean([f for c in categories for f in scores[t][c]]):>17.3f}" for t in trackers))
    worst = min((f, name) for (tracker, name), f in per_file.items() if tracker == "montage-audio")
    print(f"montage-audio's worst track: {worst[1]} F = {worst[0]:.3f}")


def timed_child(command):
    """Wall time and peak RSS (MiB) of one run of `command`, pinned to core 0.

    GNU time measures the peak: a child forked from this (large) Python process would report
    the parent's pages as its own maximum.
    """
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "taskset", "-c", "0", *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command} failed: {result.stderr}")
    return elapsed, int(result.stderr.strip().splitlines()[-1]) / 1024


def encode_mp3(example, scratch, seconds):
    wav = os.path.join(scratch, f"long-{seconds}.wav")
    mp3 = os.path.join(scratch, f"long-{seconds}.mp3")
    if not os.path.exists(mp3):
        subprocess.run([example, "long", str(seconds), wav], check=True)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", wav, "-ac", "2",
                        "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "192k", mp3], check=True)
        os.remove(wav)
    return mp3


def speed(montage, example, scratch):
    mp3 = encode_mp3(example, scratch, 180)
    runs = [timed_child([montage, "analyze", mp3, "--json"]) for _ in range(7)]
    ours = min(r[0] for r in runs)
    ours_rss = max(r[1] for r in runs)
    # librosa in this process, on core 0, after one warm-up run (numba compiles on first use).
    os.sched_setaffinity(0, {0})
    librosa_beats(mp3)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        librosa_beats(mp3)
        times.append(time.perf_counter() - start)
    theirs = min(times)
    theirs_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\nDecode + analyse a 3-minute 44.1 kHz stereo MP3 (192 kb/s), one core, best run")
    print(f"montage analyze --json : {ours * 1000:8.1f} ms   peak RSS {ours_rss:6.1f} MiB (whole process)")
    print(f"librosa load+beat_track: {theirs * 1000:8.1f} ms   peak RSS {theirs_rss:6.1f} MiB (Python process)")
    print(f"ratio librosa / montage: {theirs / ours:.1f}x")
    hour = encode_mp3(example, scratch, 3600)
    elapsed, rss = timed_child([montage, "analyze", hour, "--json"])
    print(f"one hour of MP3        : {elapsed * 1000:8.1f} ms   peak RSS {rss:6.1f} MiB")


def main():
    montage, example, scratch = sys.argv[1:4]
    os.makedirs(scratch, exist_ok=True)
    print(f"librosa {librosa.__version__}, numpy {np.__version__}")
    accuracy(example, scratch)
    speed(montage, example, scratch)


if __name__ == "__main__":
    main()
