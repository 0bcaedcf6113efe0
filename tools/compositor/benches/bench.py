"""Compositor speed: one job rendered by Montage, MoviePy and the ffmpeg CLI, in one run.

The job: 60 s of 1080p30, 16 stills with Ken Burns motion, 0.5 s crossfades centred on beat
times (120 BPM), one music track. For each x264 preset it measures
  - Montage, full render from a cold segment cache;
  - Montage, re-render after one scene's picture changed (warm cache);
  - Montage, the 480p preview (cold);
  - the ffmpeg CLI with zoompan, and with per-frame scale + crop, through xfade;
  - MoviePy 2.1;
  - the encode-only floor: Montage's frames, already decoded to raw YUV, encoded by ffmpeg alone;
and prints wall time, peak memory and the ratios the goals are stated in.

usage: bench.py <render example> <scratch dir> [preset ...]
"""

import json
import os
import shutil
import subprocess
import sys
import time

WIDTH, HEIGHT, FPS = 1920, 1080, 30
SOURCE = "2400x1350"
SCENE_LENGTHS = [3.5, 4.0] * 8
FADE = 0.5
CRF = "20"


def run(command, **kwargs):
    """Runs a command under /usr/bin/time; returns (wall seconds, peak RSS MiB)."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True, **kwargs)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


def cuts():
    times = [0.0]
    for length in SCENE_LENGTHS:
        times.append(times[-1] + length)
    return times


def make_fixtures(scratch):
    pictures = []
    for index in range(len(SCENE_LENGTHS)):
        path = os.path.join(scratch, f"still{index:02}.jpg")
        if not os.path.exists(path):
            ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={SOURCE},hue=h={index * 22}", "-frames:v", "1", "-q:v", "3", path)
        pictures.append(path)
    music = os.path.join(scratch, "music.m4a")
    if not os.path.exists(music):
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=110:duration=60:sample_rate=48000",
               "-f", "lavfi", "-i", "anoisesrc=d=60:c=pink:a=0.05:r=48000",
               "-filter_complex", "[0][1]amix=inputs=2,volume=2,apulsator=hz=2", "-ac", "2", "-c:a", "aac", music)
    edited = os.path.join(scratch, "still08-edited.jpg")
    if not os.path.exists(edited):
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={SOURCE},hue=h=300,negate", "-frames:v", "1", "-q:v", "3", edited)
    return pictures, music, edited


def montage_timeline(pictures, music, preset):
    times = cuts()
    scenes = []
    for index, picture in enumerate(pictures):
        inward = index % 2 == 0
        wide = {"x": 0, "y": 0, "w": 1, "h": 1}
        close = {"x": 0.1, "y": 0.1, "w": 0.8, "h": 0.8}
        scenes.append({
            "id": f"scene{index}",
            "start": times[index],
            "end": times[index + 1],
            "source": {"type": "image", "path": picture},
            "motion": {"from": wide if inward else close, "to": close if inward else wide, "easing": "linear"},
            "transition": {"kind": "crossfade", "duration": FADE} if index + 1 < len(pictures) else {"kind": "cut"},
        })
    return {
        "outputs": [{"size": "16:9", "fps": FPS, "quality": {"crf": int(CRF), "preset": preset}}],
        "scenes": scenes,
        "audio": {"tracks": [{"path": music, "fade_out": 1.0}]},
    }


def input_spans():
    """Each still's stretch of the ffmpeg/MoviePy timelines: its scene plus half of each fade."""
    times = cuts()
    spans = []
    for index in range(len(SCENE_LENGTHS)):
        start = times[index] - (FADE / 2 if index > 0 else 0)
        end = times[index + 1] + (FADE / 2 if index + 1 < len(SCENE_LENGTHS) else 0)
        spans.append((start, end))
    return spans


def ffmpeg_cli_command(pictures, music, preset, output, motion):
    spans = input_spans()
    command = ["ffmpeg", "-loglevel", "error", "-y"]
    for picture, (start, end) in zip(pictures, spans):
        command += ["-loop", "1", "-framerate", str(FPS), "-t", f"{end - start:.3f}", "-i", picture]
    command += ["-i", music]
    chains = []
    for index, (start, end) in enumerate(spans):
        length = end - start
        frames = round(length * FPS)
        zoom_in = index % 2 == 0
        if motion == "zoompan":
            zoom = f"1+0.25*on/{frames}" if zoom_in else f"1.25-0.25*on/{frames}"
            chains.append(
                f"[{index}:v]zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s={WIDTH}x{HEIGHT}:fps={FPS},"
                f"format=yuv420p,setsar=1[v{index}]")
        else:
            scale = f"(1+0.25*t/{length:.3f})" if zoom_in else f"(1.25-0.25*t/{length:.3f})"
            chains.append(
                f"[{index}:v]scale=w='trunc({WIDTH}*{scale}/2)*2':h='trunc({HEIGHT}*{scale}/2)*2':eval=frame,"
                f"crop={WIDTH}:{HEIGHT},format=yuv420p,setsar=1[v{index}]")
    previous = "v0"
    times = cuts()
    for index in range(1, len(spans)):
        label = f"x{index}"
        chains.append(f"[{previous}][v{index}]xfade=transition=fade:duration={FADE}:offset={times[index] - FADE / 2:.3f}[{label}]")
        previous = label
    command += ["-filter_complex", ";".join(chains), "-map", f"[{previous}]", "-map", f"{len(spans)}:a",
                "-c:v", "libx264", "-preset", preset, "-crf", CRF, "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "192k", "-t", "60", "-movflags", "+faststart", output]
    return command


MOVIEPY_SCRIPT = """
import sys
from moviepy import AudioFileClip, CompositeVideoClip, ImageClip, concatenate_videoclips, vfx
pictures, spans, music, preset, output = sys.argv[1].split(","), [tuple(map(float, s.split(":"))) for s in sys.argv[2].split(",")], sys.argv[3], sys.argv[4], sys.argv[5]
clips = []
for index, (picture, (start, end)) in enumerate(zip(pictures, spans)):
    length = end - start
    zoom = (lambda t, l=length: 1 + 0.25 * t / l) if index % 2 == 0 else (lambda t, l=length: 1.25 - 0.25 * t / l)
    still = ImageClip(picture).resized(width=1920).with_duration(length).resized(zoom).with_position("center")
    clip = CompositeVideoClip([still], size=(1920, 1080)).with_duration(length)
    if index > 0:
        clip = clip.with_effects([vfx.CrossFadeIn(0.5)])
    clips.append(clip)
video = concatenate_videoclips(clips, method="compose", padding=-0.5).with_audio(AudioFileClip(music).with_duration(60))
video.write_videofile(output, fps=30, codec="libx264", preset=preset, audio_codec="aac", ffmpeg_params=["-crf", "20"], threads=2, logger=None)
"""


def main():
    render, scratch = sys.argv[1], sys.argv[2]
    presets = sys.argv[3:] or ["veryfast", "medium"]
    skip = set(filter(None, os.environ.get("BENCH_SKIP", "").split(",")))
    os.makedirs(scratch, exist_ok=True)
    pictures, music, edited = make_fixtures(scratch)
    python = sys.executable
    script = os.path.join(scratch, "moviepy_job.py")
    with open(script, "w") as handle:
        handle.write(MOVIEPY_SCRIPT)
    spans = ",".join(f"{a:.3f}:{b:.3f}" for a, b in input_spans())

    print(f"job: 60 s 1080p30, {len(pictures)} stills with Ken Burns, {FADE} s crossfades at beat times, music; crf {CRF}")
    for preset in presets:
        results = {}
        timeline_path = os.path.join(scratch, f"timeline-{preset}.json")
        with open(timeline_path, "w") as handle:
            json.dump(montage_timeline(pictures, music, preset), handle)
        edited_timeline = montage_timeline(pictures[:8] + [edited] + pictures[9:], music, preset)
        edited_path = os.path.join(scratch, f"timeline-{preset}-edited.json")
        with open(edited_path, "w") as handle:
            json.dump(edited_timeline, handle)

        cache = os.path.join(scratch, f"cache-{preset}")
        shutil.rmtree(cache, ignore_errors=True)
        out = os.path.join(scratch, f"out-{preset}")
        results["montage"] = run([render, timeline_path, out, "--cache", cache])
        results["montage edit"] = run([render, edited_path, out + "-edit", "--cache", cache])
        preview_cache = os.path.join(scratch, f"preview-cache-{preset}")
        shutil.rmtree(preview_cache, ignore_errors=True)
        results["montage preview"] = run([render, timeline_path, out + "-preview", "--preview", "--cache", preview_cache])

        raw = os.path.join(scratch, "frames.yuv")
        ffmpeg("-i", os.path.join(out, "render-16x9.mp4"), "-f", "rawvideo", "-pix_fmt", "yuv420p", raw)
        results["encode-only floor"] = run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                                            "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", raw, "-c:v", "libx264",
                                            "-preset", preset, "-crf", CRF, "-an", os.path.join(scratch, "floor.mp4")])
        os.remove(raw)
        for motion in ["zoompan", "scale+crop"]:
            if f"ffmpeg {motion}" in skip:
                continue
            command = ffmpeg_cli_command(pictures, music, preset, os.path.join(scratch, f"cli-{motion}.mp4"), motion)
            results[f"ffmpeg CLI {motion}"] = run(command)
        if "moviepy" not in skip:
            results["MoviePy 2.1"] = run([python, script, ",".join(pictures), spans, music, preset,
                                          os.path.join(scratch, "moviepy.mp4")])

        print(f"\npreset {preset}")
        print(f"| {'renderer':<22} | {'wall s':>8} | {'peak MiB':>8} |")
        print(f"|{'-' * 24}|{'-' * 10}|{'-' * 10}|")
        for name, (wall, peak) in results.items():
            print(f"| {name:<22} | {wall:8.1f} | {peak:8.0f} |")
        full = results["montage"][0]
        print(f"montage vs encode-only floor: {full / results['encode-only floor'][0]:.2f}x (goal <= 1.2)")
        cli = [wall for name, (wall, _) in results.items() if name.startswith("ffmpeg CLI")]
        if cli:
            print(f"montage vs best ffmpeg CLI: {full / min(cli):.2f}x (goal <= 1.0)")
        if "MoviePy 2.1" in results:
            print(f"MoviePy / montage: {results['MoviePy 2.1'][0] / full:.1f}x faster (goal >= 10)")
        print(f"one-scene edit: {100 * results['montage edit'][0] / full:.1f}% of the full render (goal < 15%)")
        print(f"480p preview: {100 * results['montage preview'][0] / full:.1f}% of the full render (goal < 15%)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
