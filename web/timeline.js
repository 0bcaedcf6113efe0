// The plan drawn over the music: the waveform, beat and downbeat marks, the music's
// sections, and the scene blocks that cut on the beats.

const COLORS = {
  wave: "#7c8cff",
  beat: "rgba(230, 232, 240, 0.25)",
  downbeat: "rgba(255, 208, 102, 0.85)",
  section: ["rgba(124, 140, 255, 0.08)", "rgba(124, 140, 255, 0.16)"],
  scene: "#2f3650",
  sceneReady: "#3d6b55",
  sceneIssue: "#8a3b3b",
  sceneBorder: "#0f1117",
  text: "#e6e8f0",
};

/**
 * Draws `plan` (scenes) over `music` (waveform, beats, downbeats, sections) on `canvas`;
 * either may be missing. Returns a sentence describing the picture for screen readers.
 */
export function drawTimeline(canvas, music, plan) {
  const width = canvas.clientWidth || 600;
  const height = canvas.clientHeight || 140;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);

  const duration = Math.max(music?.duration || 0, plan?.duration || 0);
  if (!duration) return "The timeline appears once the music is analysed.";
  // The video may be shorter than the song: the timeline shows the video's length.
  const span = plan?.duration || duration;
  const x = (t) => (t / span) * width;
  const waveTop = 6;
  const waveHeight = height * 0.55;
  const scenesTop = waveTop + waveHeight + 8;
  const scenesHeight = height - scenesTop - 4;

  if (music) {
    music.sections.forEach((section, k) => {
      g.fillStyle = COLORS.section[k % 2];
      g.fillRect(x(section.start), waveTop, x(section.end) - x(section.start), waveHeight);
    });
    const values = music.waveform;
    const step = music.duration / Math.max(values.length, 1);
    const middle = waveTop + waveHeight / 2;
    g.fillStyle = COLORS.wave;
    values.forEach((value, k) => {
      const t = k * step;
      if (t > span) return;
      const h = Math.max(1, value * waveHeight);
      g.fillRect(x(t), middle - h / 2, Math.max(1, x(step) - 0.5), h);
    });
    g.lineWidth = 1;
    g.strokeStyle = COLORS.beat;
    for (const beat of music.beats) {
      if (beat > span) break;
      g.beginPath();
      g.moveTo(x(beat) + 0.5, waveTop);
      g.lineTo(x(beat) + 0.5, waveTop + waveHeight);
      g.stroke();
    }
    g.lineWidth = 2;
    g.strokeStyle = COLORS.downbeat;
    for (const downbeat of music.downbeats) {
      if (downbeat > span) break;
      g.beginPath();
      g.moveTo(x(downbeat), waveTop);
      g.lineTo(x(downbeat), waveTop + waveHeight);
      g.stroke();
    }
  }

  if (plan) {
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    for (const scene of plan.scenes) {
      const left = x(scene.start);
      const w = Math.max(2, x(scene.end) - left);
      g.fillStyle = scene.issues.length
        ? COLORS.sceneIssue
        : scene.thumbnail
          ? COLORS.sceneReady
          : COLORS.scene;
      g.fillRect(left, scenesTop, w, scenesHeight);
      g.fillStyle = COLORS.sceneBorder;
      g.fillRect(left, scenesTop, 1, scenesHeight);
      if (w > 16) {
        g.fillStyle = COLORS.text;
        g.fillText(String(scene.index + 1), left + 4, scenesTop + scenesHeight / 2);
      }
    }
  }

  const parts = [];
  if (plan) parts.push(`${plan.scenes.length} scenes over ${span.toFixed(1)} s`);
  if (music) {
    const beats = music.beats.filter((b) => b <= span).length;
    parts.push(`${music.bpm.toFixed(0)} BPM, ${beats} beats, ${music.meter}/4`);
    const issues = plan ? plan.scenes.filter((s) => s.issues.length).map((s) => s.index + 1) : [];
    if (issues.length) parts.push(`issues on scene ${issues.join(", ")}`);
  }
  return `Timeline: ${parts.join("; ")}.`;
}
