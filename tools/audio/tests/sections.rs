//! Sections follow the music's changes of energy and start on bar lines.

use montage_audio::synth::{TrackSpec, render};
use montage_audio::{SectionKind, analyze_samples};

#[test]
fn a_quiet_intro_and_a_breakdown_become_sections_on_downbeats() {
    // 8 bars of soft chords, then drums; bars 24–31 at a fifth of the level; then full again.
    let spec = TrackSpec {
        quiet_intro_bars: 8,
        bars: 40,
        ..TrackSpec::steady(120.0, 80.0)
    };
    let mut track = render(&spec);
    let (breakdown_start, breakdown_end) = (track.downbeats[24], track.downbeats[32]);
    let rate = f64::from(track.sample_rate);
    for (i, s) in track.samples.iter_mut().enumerate() {
        let t = i as f64 / rate;
        if (breakdown_start..breakdown_end).contains(&t) {
            *s *= 0.2;
        }
    }
    let grid = analyze_samples(&track.samples, track.sample_rate).unwrap();
    let summary: Vec<_> = grid
        .sections
        .iter()
        .map(|s| (s.kind, s.start, s.end))
        .collect();
    eprintln!("{summary:?}");

    // Contiguous, covering the track, each change on a detected bar line.
    assert_eq!(grid.sections[0].start, 0.0);
    assert_eq!(grid.sections.last().unwrap().end, grid.duration);
    for pair in grid.sections.windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
        assert!(
            grid.downbeats.contains(&pair[1].start),
            "{} is not a downbeat",
            pair[1].start
        );
    }
    let intro = &grid.sections[0];
    assert_eq!(intro.kind, SectionKind::Intro, "{summary:?}");
    assert!(
        (intro.end - track.downbeats[8]).abs() < 2.1,
        "intro ends at {} (drums at {})",
        intro.end,
        track.downbeats[8]
    );
    let breakdown = grid
        .sections
        .iter()
        .find(|s| s.kind == SectionKind::Breakdown)
        .expect("a breakdown");
    assert!(
        (breakdown.start - breakdown_start).abs() < 2.1,
        "breakdown at {} (truth {breakdown_start})",
        breakdown.start
    );
    assert!(breakdown.energy < 0.5 * grid.sections.iter().map(|s| s.energy).fold(0.0, f64::max));
}
