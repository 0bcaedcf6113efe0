"""Builds the beat-tracking evaluation corpus: MP3s with exact beat and downbeat times.

Run by scripts/bench-beats in the venv it makes (music21, pretty_midi, librosa, soundfile).
Usage: build.py [--out DIR] [--work DIR] [--only NAME,...] [--max-seconds 90]

For every entry of tracks.py:
 1. MIDI: the Debian file as is, or the music21 score (repeats expanded, tempo set, GM programs
    set) written to MIDI by music21.
 2. Truth, from the MIDI file's own tempo map and time signatures: a bar walk over ticks
    (bars restart at every time-signature event; beat = denominator note, or dotted note in
    compound meters) converted to seconds through pretty_midi's tick-to-time map, checked
    against pretty_midi's get_beats()/get_downbeats(). For music21 scores, the bars come from
    the score's measures instead (so pickups and split bars are right), and every note's time
    is checked against the MIDI file.
 3. Render with fluidsynth (FluidR3 GM), whole, to WAV; measure the render's offset against the
    MIDI note-ons (onset-envelope cross-correlation) and correct the truth if it exceeds 5 ms.
 4. Cut at --max-seconds with a 1.5 s fade, encode 128 kb/s MP3 (ffmpeg/libmp3lame); truth kept
    from the first note (minus 50 ms) to the end of the last note or the cut.
 5. Checks (kept in the manifest's `checks`): notes on the tick grid, drum and bass weight on
    the bar phase the truth calls downbeat, audio onset strength on beats vs between them.
    Tracks under 20 s, or whose notes are not on the grid (tempo map unreliable), are dropped.
 6. Split into tuning / reporting (see `assign_sets`) and write manifest.json.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tracks import TRACKS  # noqa: E402

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SR = 44100
MIN_SECONDS = 20.0
FADE = 1.5
LEAD = 0.05  # truth starts this long before the first note


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- meters and beats

def is_compound(num, den):
    """6/8, 9/8, 12/8, 6/16...: the beat is the dotted note (three denominator notes)."""
    return den >= 8 and num % 3 == 0 and num > 3


def beat_unit(num, den):
    """(quarter lengths per beat, beats per bar) under the corpus convention."""
    if is_compound(num, den):
        return 3 * 4.0 / den, num // 3
    return 4.0 / den, num


def tick_times(pm, ticks):
    """Seconds of (possibly fractional) ticks, through pretty_midi's tempo map."""
    table = pm._PrettyMIDI__tick_to_time
    ticks = np.asarray(ticks, dtype=float)
    if len(table) < 2:
        raise ValueError("empty tick map")
    last = len(table) - 1
    out = np.interp(ticks, np.arange(len(table)), table)
    beyond = ticks > last
    if beyond.any():  # past the last event: the last tempo continues
        scale = table[last] - table[last - 1]
        out[beyond] = table[last] + (ticks[beyond] - last) * scale
    return out


def ts_events(pm):
    events = {}
    for ts in pm.time_signature_changes:
        events[pm.time_to_tick(ts.time)] = (ts.numerator, ts.denominator)
    events = sorted(events.items())
    assumed = False
    if not events or events[0][0] > 0:
        events.insert(0, (0, (4, 4)))
        assumed = not pm.time_signature_changes
    return events, assumed


def midi_bar_walk(pm, origin_tick, end_tick):
    """Beats and downbeats (ticks) and the meter of each bar, from origin_tick on."""
    events, assumed = ts_events(pm)
    res = pm.resolution
    beats, downbeats, meters, warnings_ = [], [], [], []
    idx = 0
    while idx + 1 < len(events) and events[idx + 1][0] <= origin_tick:
        idx += 1
    tick = float(origin_tick)
    while tick <= end_tick:
        num, den = events[idx][1]
        ql, nbeats = beat_unit(num, den)
        beat = ql * res
        bar = beat * nbeats
        nxt = events[idx + 1][0] if idx + 1 < len(events) else float("inf")
        downbeats.append(tick)
        meters.append((tick, f"{num}/{den}"))
        for j in range(nbeats):
            t = tick + j * beat
            if t >= nxt - 1e-6:
                break
            beats.append(t)
        tick += bar
        if tick >= nxt - 1e-6:
            if tick > nxt + 1e-6:
                warnings_.append(f"time signature change at tick {nxt} inside a bar")
            tick = float(nxt)
            idx += 1
    return beats, downbeats, meters, assumed, warnings_


def music21_bar_walk(score):
    """Beats, downbeats (quarter lengths) and meters from the score's measures."""
    from music21 import meter

    part = score.parts[0]
    beats, downbeats, meters = [], [], []
    carry = 0.0
    ts = None
    measures = list(part.getElementsByClass("Measure"))
    for i, m in enumerate(measures):
        new_ts = m.timeSignature
        if new_ts is None and ts is None:
            new_ts = m.getContextByClass(meter.TimeSignature) or meter.TimeSignature("4/4")
        if new_ts is not None:
            if ts is None or new_ts.ratioString != ts.ratioString:
                carry = 0.0
            ts = new_ts
        num, den = ts.numerator, ts.denominator
        ql, _ = beat_unit(num, den)
        bar = ts.barDuration.quarterLength
        o = float(m.getOffsetInHierarchy(score))
        d = float(m.duration.quarterLength)
        if i == 0 and d < bar - 1e-6:  # pickup
            carry = bar - d
        k = int(np.ceil(carry / ql - 1e-6))
        while k * ql < carry + d - 1e-6:
            p = k * ql
            beats.append(o + p - carry)
            if abs(p) < 1e-6:
                downbeats.append(o)
                meters.append((o, f"{num}/{den}"))
            k += 1
        carry = (carry + d) % bar
        if abs(carry - bar) < 1e-6 or abs(carry) < 1e-6:
            carry = 0.0
    return beats, downbeats, meters


# ---------------------------------------------------------------- MIDI preparation

def prepare_music21(track, out_mid):
    from music21 import chord, corpus, harmony, instrument, stream, tempo

    s = corpus.parse(track["corpus"])
    if isinstance(s, stream.Opus):
        s = s.scores[0]
    if not isinstance(s, stream.Score):
        s = stream.Score([s]) if isinstance(s, stream.Part) else s
    try:
        s = s.expandRepeats()
    except Exception as e:  # noqa: BLE001
        # badly formed repeats: play the score straight through, as written once
        from music21 import bar, repeat

        log(f"  {track['name']}: expandRepeats failed ({e}); repeat signs removed")
        for m in s.recurse().getElementsByClass("Measure"):
            if isinstance(m.leftBarline, bar.Repeat):
                m.leftBarline = None
            if isinstance(m.rightBarline, bar.Repeat):
                m.rightBarline = bar.Barline("regular")
        for r in list(s.recurse().getElementsByClass(repeat.RepeatExpression)):
            r.activeSite.remove(r)
    if track.get("realize_chords"):
        # the lead sheet's own chord symbols, sounded as block chords in a second part
        import copy

        melody = s.parts[0]
        harmony.realizeChordSymbolDurations(melody)
        acc = copy.deepcopy(melody)
        acc.id = "chords"
        for el in list(acc.recurse().notesAndRests):
            if not isinstance(el, harmony.ChordSymbol):
                el.activeSite.remove(el)
        for cs in acc.recurse().getElementsByClass(harmony.ChordSymbol):
            cs.writeAsChord = True
            cs.volume.velocity = 60
        for cs in list(melody.recurse().getElementsByClass(harmony.ChordSymbol)):
            cs.activeSite.remove(cs)
        s.insert(0, acc)
    if not track.get("keep_tempo"):
        for mm in list(s.recurse().getElementsByClass(tempo.MetronomeMark)):
            mm.activeSite.remove(mm)
        for tt in list(s.recurse().getElementsByClass(tempo.TempoText)):
            tt.activeSite.remove(tt)
    programs = track.get("programs") or []
    bw = music21_bar_walk(s)
    first_ts = bw[2][0][1] if bw[2] else "4/4"
    num, den = map(int, first_ts.split("/"))
    ql, _ = beat_unit(num, den)
    changes = [(1, track["tempo"])] + list(track.get("tempo_changes", []))
    for pi, p in enumerate(s.parts):
        if pi < len(programs):
            for inst in list(p.recurse().getElementsByClass(instrument.Instrument)):
                inst.activeSite.remove(inst)
            inst = instrument.instrumentFromMidiProgram(programs[pi])
            inst.midiProgram = programs[pi]
            p.insert(0, inst)
        if track.get("keep_tempo"):
            continue
        measures = list(p.getElementsByClass("Measure"))
        if not measures:  # the realized chord part: the other parts carry the tempo
            continue
        for i, (number, bpm) in enumerate(changes):
            # the first tempo goes on the first measure, a pickup (measure 0) included
            target = [measures[0]] if i == 0 else [m for m in measures if m.number == number]
            if not target:
                raise ValueError(f"no measure {number} for a tempo change")
            target[0].insert(0, tempo.MetronomeMark(number=bpm * ql, referent=1.0))
    s.write("midi", fp=out_mid)
    return s


def music21_truth(score, pm):
    """Bar walk of the score, in seconds of the MIDI file music21 wrote; checks every note."""
    beats_ql, downbeats_ql, meters = music21_bar_walk(score)
    res = pm.resolution
    to_s = lambda q: tick_times(pm, np.asarray(q, float) * res)  # noqa: E731
    # every note onset of the score must be a note onset of the MIDI file at the same time
    score_on = []
    for n in score.recurse().notes:
        if n.tie is not None and n.tie.type in ("stop", "continue"):
            continue
        if n.duration.isGrace or n.duration.quarterLength == 0:
            continue
        score_on.append(float(n.getOffsetInHierarchy(score)))
    score_t = np.unique(np.round(to_s(score_on), 3))
    midi_t = np.unique(np.round([n.start for i in pm.instruments for n in i.notes], 3))
    if len(score_t) and len(midi_t):
        d = np.abs(midi_t[:, None] - score_t[None, :]).min(axis=1)
        check = dict(notes_off_score_grid=int((d > 0.002).sum()), notes=int(len(midi_t)),
                     max_dev=float(d.max()))
    else:
        check = dict(notes_off_score_grid=-1)
    meter_times = [(float(to_s([q])[0]), m) for q, m in meters]
    return to_s(beats_ql), to_s(downbeats_ql), meter_times, check


def midi_truth(track, pm):
    notes = [n for i in pm.instruments for n in i.notes]
    last_end = max(n.end for n in notes)
    end_tick = pm.time_to_tick(last_end) + pm.resolution
    origin = track.get("origin_tick", 0)
    beats_t, downbeats_t, meters, assumed, warns = midi_bar_walk(pm, origin, end_tick)
    beats = tick_times(pm, beats_t)
    downbeats = tick_times(pm, downbeats_t)
    meter_times = [(float(tick_times(pm, [t])[0]), m) for t, m in meters]
    # pretty_midi's own grid (from tick 0; same convention for compound meters)
    check = {"meter_assumed_4/4": assumed, "warnings": warns}
    try:
        pb = pm.get_beats()
        pdb = pm.get_downbeats()
        lo, hi = beats[0], min(beats[-1], last_end) - 1.0
        sel = beats[(beats >= lo) & (beats <= hi)]
        psel = pb[(pb >= lo - 0.01) & (pb <= hi + 0.01)]
        if len(psel):
            dev = np.abs(sel[:, None] - psel[None, :]).min(axis=1) if len(sel) else np.array([0])
            check["pretty_midi_beats_max_dev_s"] = float(np.max(dev))
            check["pretty_midi_beat_count"] = [int(len(psel)), int(len(sel))]
        dsel = downbeats[(downbeats >= lo) & (downbeats <= hi)]
        pdsel = pdb[(pdb >= lo - 0.01) & (pdb <= hi + 0.01)]
        if len(pdsel) and len(dsel):
            check["pretty_midi_downbeats_max_dev_s"] = float(
                np.abs(dsel[:, None] - pdsel[None, :]).min(axis=1).max())
    except Exception as e:  # noqa: BLE001
        check["pretty_midi_error"] = str(e)
    return beats, downbeats, meter_times, check


# ---------------------------------------------------------------- checks

def grid_fit(pm, origin_tick=0):
    """Share of note onsets within 1/24 beat of the 16th or 8th-triplet grid (ticks)."""
    res = pm.resolution
    ticks = np.array([pm.time_to_tick(n.start) for i in pm.instruments for n in i.notes], float)
    ticks -= origin_tick
    if not len(ticks):
        return 0.0
    d = np.min([np.abs(((ticks + g / 2) % g) - g / 2) for g in (res / 4, res / 3)], axis=0)
    return float(np.mean(d <= res / 24))


def downbeat_phase(pm, beats, downbeats):
    """Weight of kick, crash and bass-note onsets on each beat-of-bar position.

    Returns (weight on the truth's beat 1, best other position's weight, beats per bar)."""
    if len(downbeats) < 4 or len(beats) < 8:
        return None
    db = set(np.round(downbeats, 4))
    pos, k = [], -1
    for b in beats:
        if np.round(b, 4) in db:
            k = 0
        elif k >= 0:
            k += 1
        pos.append(k)
    pos = np.array(pos)
    starts = np.flatnonzero(pos == 0)
    if len(starts) < 3:
        return None
    nbar = int(np.bincount(np.diff(starts)).argmax())
    if nbar < 2:
        return None
    weight = np.zeros(nbar)
    half = np.median(np.diff(beats)) / 4
    for inst in pm.instruments:
        for n in inst.notes:
            if inst.is_drum:
                w = {35: 1.0, 36: 1.0, 49: 1.5, 57: 1.5}.get(n.pitch, 0.0)
            else:
                w = 0.5 if n.pitch < 50 else 0.0
            if w == 0.0:
                continue
            i = np.searchsorted(beats, n.start - half)
            if i < len(beats) and abs(beats[i] - n.start) <= half and 0 <= pos[i] < nbar:
                weight[pos[i]] += w * n.velocity / 100.0
    if weight.sum() == 0:
        return None
    others = weight[1:].max()
    return float(weight[0]), float(others), nbar


def _limit_file_size():
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 30, 2 << 30))


def render(mid, wav):
    """fluidsynth, whole file; bounded in time and output size in case a file never ends."""
    try:
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", wav, "-r", str(SR), SOUNDFONT, mid],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=600, preexec_fn=_limit_file_size)
    except BaseException:
        if os.path.exists(wav):
            os.remove(wav)
        raise


def render_latency(work):
    """fluidsynth's own delay: render known hits (drums, piano, strings, organ), time each.

    Returns {instrument: median delay (s) from note-on to the first sample above -40 dB of that
    note's peak}. Drums and piano have near-instant attacks, so their delay is the render's."""
    import soundfile as sf

    mid, wav = os.path.join(work, "_latency.mid"), os.path.join(work, "_latency.wav")
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    kinds = [("drum-woodblock", 0, True, 76), ("drum-snare", 0, True, 38), ("drum-kick", 0, True, 36),
             ("piano", 0, False, 60), ("guitar", 24, False, 60)]
    times = {}
    for i, (kind, prog, drum, pitch) in enumerate(kinds):
        inst = pretty_midi.Instrument(program=prog, is_drum=drum)
        times[kind] = [1.0 + (i * 6 + k) * 0.8 for k in range(6)]
        for t in times[kind]:
            inst.notes.append(pretty_midi.Note(velocity=100, pitch=pitch, start=t, end=t + 0.3))
        pm.instruments.append(inst)
    pm.write(mid)
    render(mid, wav)
    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = np.abs(y).max(axis=1)
    out = {}
    for kind, ts in times.items():
        delays = []
        for t in ts:
            a = int((t - 0.02) * sr)
            seg = y[a: a + int(0.5 * sr)]
            above = np.flatnonzero(seg > 0.01 * seg.max())
            delays.append(above[0] / sr - 0.02)
        out[kind] = round(float(np.median(delays)), 4)
    os.remove(wav)
    return out


def audio_checks(wav, pm, beats, until):
    """Onset-envelope lag against MIDI note-ons, first-sound lead, onset strength on beats vs
    between them, and the peak level."""
    import librosa
    import soundfile as sf

    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    n = min(len(y), int(sr * min(until, 60.0)))
    y = librosa.resample(y[:n], orig_sr=sr, target_sr=22050)
    hop = 64
    env = librosa.onset.onset_strength(y=y, sr=22050, hop_length=hop)
    fps = 22050 / hop
    train = np.zeros_like(env)
    for inst in pm.instruments:
        for note in inst.notes:
            f = int(round(note.start * fps))
            if 0 <= f < len(train):
                train[f] += note.velocity / 127.0
    env0 = env - env.mean()
    best, best_lag = -np.inf, 0
    for lag in range(int(-0.06 * fps), int(0.15 * fps) + 1):
        if lag >= 0:
            c = np.dot(train[: len(train) - lag], env0[lag:])
        else:
            c = np.dot(train[-lag:], env0[: len(env0) + lag])
        if c > best:
            best, best_lag = c, lag
    offset = best_lag / fps
    # onset strength at beats vs at beat midpoints (phase sanity)
    b = np.asarray([t for t in beats if t < n / sr - 0.1])
    if len(b) > 4:
        mids = (b[:-1] + b[1:]) / 2

        def strength(ts):
            idx = np.round((ts + offset) * fps).astype(int)
            idx = idx[(idx >= 2) & (idx < len(env) - 2)]
            return float(np.mean([env[i - 2: i + 3].max() for i in idx])) if len(idx) else 0.0
        on, off = strength(b), strength(mids)
    else:
        on = off = 0.0
    full = np.abs(sf.read(wav, dtype="float32", always_2d=True)[0]).max(axis=1)
    peak = float(full.max())
    first_note = min(n.start for i in pm.instruments for n in i.notes)
    first_sound = np.flatnonzero(full > 10 ** (-50 / 20) * peak)[0] / sr
    return offset, first_sound - first_note, on, off, peak


def encode(wav, mp3, cut, peak):
    # level: peak at -1 dBFS (at most +24 dB of gain); fade out over the last 1.5 s
    gain = min(20 * np.log10(0.89 / max(peak, 1e-6)), 24.0)
    af = f"volume={gain:.2f}dB,afade=t=out:st={max(cut - FADE, 0):.3f}:d={FADE}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", wav, "-t", f"{cut:.3f}", "-af", af,
                    "-c:a", "libmp3lame", "-b:a", "128k", mp3], check=True)


def wav_seconds(wav):
    import soundfile as sf
    return sf.info(wav).duration


# ---------------------------------------------------------------- split

def name_hash(name):
    return hashlib.sha256(name.encode()).hexdigest()


def stratum(t):
    if t["tempo_changes"]:
        return "tempo-change"
    if t["meter"] != "4/4":
        return "meter-3-6-odd"
    if not t["drums"]:
        return "no-drums"
    if t["bpm"] <= 88:
        return "slow"
    g = t["genre"]
    if any(w in g for w in ("jazz", "swing", "blues", "boogie", "rag", "dixie", "bossa")):
        return "jazz-blues"
    return "pop-rock-electronic"


def assign_sets(tracks):
    """Stratified split: tracks are grouped by stratum (tempo change > meter > no drums > slow >
    jazz/blues > pop/rock/electronic); within a stratum they are sorted by sha256(name), and
    alternate tuning, reporting, tuning... The first of each stratum alternates too, by the
    strata's alphabetical order, so odd-sized strata do not all lean the same way."""
    groups = {}
    for t in tracks:
        t["stratum"] = stratum(t)
        groups.setdefault(t["stratum"], []).append(t)
    for gi, key in enumerate(sorted(groups)):
        members = sorted(groups[key], key=lambda t: name_hash(t["name"]))
        for i, t in enumerate(members):
            t["set"] = "tuning" if (i + gi) % 2 == 0 else "reporting"


# ---------------------------------------------------------------- main

def build_track(track, work, out, max_seconds, latency):
    name = track["name"]
    mid = os.path.join(work, name + ".mid")
    wav = os.path.join(work, name + ".wav")
    mp3 = os.path.join(out, "audio", name + ".mp3")
    checks = {}
    if track["kind"] == "music21":
        raw = os.path.join(work, name + ".music21.mid")
        score = prepare_music21(track, raw)
        # Re-written by pretty_midi (same notes, tempo map and meters): fluidsynth 2.3 never
        # finishes some files exactly as music21 writes them (haydn, mozart k458).
        pretty_midi.PrettyMIDI(raw).write(mid)
        pm = pretty_midi.PrettyMIDI(mid)
        beats, downbeats, meters, c = music21_truth(score, pm)
        checks.update(c)
        origin = 0
    else:
        shutil.copyfile(track["path"], mid)
        pm = pretty_midi.PrettyMIDI(mid)
        beats, downbeats, meters, c = midi_truth(track, pm)
        checks.update(c)
        origin = track.get("origin_tick", 0)
    checks["grid_fit"] = round(grid_fit(pm, origin), 3)

    notes = [n for i in pm.instruments for n in i.notes]
    first = min(n.start for n in notes)
    last = max(n.end for n in notes)
    render(mid, wav)
    total = wav_seconds(wav)
    cut = min(max_seconds, total)
    until = min(cut, last)
    lag, lead, on, off, peak = audio_checks(wav, pm, beats, until)
    checks["onset_envelope_lag_s"] = round(lag, 4)
    checks["first_sound_minus_first_note_s"] = round(lead, 4)
    checks["onset_strength_on_beats_vs_between"] = [round(on, 3), round(off, 3)]
    checks["peak"] = round(peak, 3)
    # The render's own delay (measured once on drum and piano hits) shifts the truth when it is
    # above 5 ms; instruments' attacks (strings swell for tens of ms) are part of the music.
    shift = latency if abs(latency) > 0.005 else 0.0
    checks["truth_shifted_s"] = shift

    def window(ts):
        ts = np.asarray(ts) + shift
        return [round(float(t), 4) for t in ts if first + shift - LEAD <= t <= until + shift - 0.05]

    wb, wdb = window(beats), window(downbeats)
    ph = downbeat_phase(pm, np.asarray(beats), np.asarray(downbeats))
    if ph:
        checks["downbeat_phase_weight"] = [round(ph[0], 1), round(ph[1], 1), ph[2]]
    drums = any(i.is_drum and sum(1 for n in i.notes if n.start < until) > 20 for i in pm.instruments)
    # tempo (beat BPM) over the window, from the truth's inter-beat intervals
    ibi = np.diff(wb)
    local = 60.0 / ibi if len(ibi) else np.array([0.0])
    segs = []
    for t, b in zip(wb[:-1], local):
        if not segs or abs(b - segs[-1][1]) > 0.01 * segs[-1][1]:
            segs.append([round(t, 3), round(float(b), 2)])
    in_window = [(t, m) for t, m in meters if first - LEAD <= t <= until]
    meter_list = sorted({m for _, m in in_window}, key=lambda m: -sum(1 for _, x in in_window if x == m))
    bars_of = {m: sum(1 for _, x in in_window if x == m) for m in meter_list}
    main_meter = meter_list[0] if meter_list else "4/4"
    entry = dict(
        name=name, path=mp3, source=track["package"], origin=track.get("path") or track.get("corpus"),
        licence=track["licence"], genre=track["genre"], drums=drums,
        meter=main_meter, meters=bars_of, bpm=round(float(np.median(local)), 2),
        bpm_range=[round(float(local.min()), 1), round(float(local.max()), 1)],
        tempo_changes=bool(len(segs) > 1 and (local.max() - local.min()) > 0.03 * np.median(local)),
        tempo_map=segs[:50], duration=round(cut, 3), first_note=round(first, 3),
        beats=wb, downbeats=wdb, checks=checks,
    )
    if track["kind"] == "music21":
        entry["tempo_set"] = {"bpm": track["tempo"], "changes": track.get("tempo_changes", [])}
    drop = None
    if until - max(first, 0) < MIN_SECONDS:
        drop = f"too short ({until - first:.1f} s of music)"
    elif checks["grid_fit"] < 0.7:
        drop = f"notes off the tempo map's grid (grid_fit {checks['grid_fit']})"
    elif track["kind"] == "music21" and checks.get("notes_off_score_grid", 0) != 0:
        drop = f"music21 MIDI does not match the score ({checks.get('notes_off_score_grid')} notes)"
    elif len(wb) < 16:
        drop = "fewer than 16 beats"
    if drop:
        entry["dropped"] = drop
    else:
        os.makedirs(os.path.dirname(mp3), exist_ok=True)
        encode(wav, mp3, cut, peak)
    os.remove(wav)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/montage/beat-corpus"))
    ap.add_argument("--work", default="/tmp/beatcorpus/work")
    ap.add_argument("--only", default="")
    ap.add_argument("--max-seconds", type=float, default=90.0)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(os.path.join(args.out, "audio"), exist_ok=True)
    only = set(filter(None, args.only.split(",")))
    names = [t["name"] for t in TRACKS]
    assert len(names) == len(set(names)), "duplicate track names"
    entries, dropped = [], []
    lat = render_latency(args.work)
    latency = float(np.median(list(lat.values())))
    log(f"fluidsynth latency per instrument (s): {lat}; render delay used: {latency}")
    for track in sorted(TRACKS, key=lambda t: t["name"]):
        if only and track["name"] not in only:
            continue
        log(f"== {track['name']}")
        try:
            e = build_track(track, args.work, args.out, args.max_seconds, latency)
        except Exception as ex:  # noqa: BLE001
            log(f"  FAILED: {type(ex).__name__}: {ex}")
            dropped.append(dict(name=track["name"], dropped=f"build failed: {ex}"))
            continue
        c = e["checks"]
        log(f"  {e['meter']} {e['bpm']} BPM drums={e['drums']} beats={len(e['beats'])} "
            f"lag={c['onset_envelope_lag_s']} lead={c['first_sound_minus_first_note_s']} grid={c['grid_fit']} on/off={c['onset_strength_on_beats_vs_between']} "
            f"db={c.get('downbeat_phase_weight')} pm_dev={c.get('pretty_midi_beats_max_dev_s')} "
            f"{e.get('dropped', '')}")
        (dropped if "dropped" in e else entries).append(e)
    assign_sets(entries)
    manifest = dict(
        version=1,
        description="Beat-tracking corpus built by tools/audio/benches/corpus/build.py; see its README.md",
        tolerance_s=0.07, skip_s=5.0, render_latency_s=lat, render_delay_applied_s=latency if abs(latency) > 0.005 else 0.0,
        tracks=sorted(entries, key=lambda t: t["name"]),
        dropped=[dict(name=d["name"], reason=d["dropped"], checks=d.get("checks")) for d in dropped],
    )
    path = os.path.join(args.out, "manifest.json")
    if only and os.path.exists(path):
        path = os.path.join(args.out, "manifest.partial.json")
    with open(path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(path + ".tmp", path)
    for t in entries:
        log(f"{t['set']:9s} {t['stratum']:20s} {t['name']}")
    log(f"wrote {path}: {len(entries)} tracks, {len(dropped)} dropped")


if __name__ == "__main__":
    main()
