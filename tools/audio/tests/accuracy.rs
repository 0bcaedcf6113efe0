//! Beat accuracy on synthesised tracks with known beats (mir_eval's F-measure).

use montage_audio::eval::f_measure;
use montage_audio::synth::{TrackSpec, render};
use montage_audio::{BeatGrid, analyze_samples};

struct Case {
    name: String,
    spec: TrackSpec,
}

fn steady_cases() -> Vec<Case> {
    [
        70.0, 84.0, 96.0, 110.0, 120.0, 128.0, 140.0, 155.0, 170.0, 180.0,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, bpm)| Case {
        name: format!("steady {bpm} BPM"),
        spec: TrackSpec {
            seed: i as u64,
            ..TrackSpec::steady(bpm, 30.0)
        },
    })
    .collect()
}

fn other_cases() -> Vec<Case> {
    let base = |bpm| TrackSpec::steady(bpm, 30.0);
    vec![
        Case {
            name: "swing 100".into(),
            spec: TrackSpec {
                swing: 0.33,
                ..base(100.0)
            },
        },
        Case {
            name: "swing 132".into(),
            spec: TrackSpec {
                swing: 0.25,
                ..base(132.0)
            },
        },
        Case {
            name: "syncopation 118".into(),
            spec: TrackSpec {
                syncopation: true,
                ..base(118.0)
            },
        },
        Case {
            name: "syncopation 95".into(),
            spec: TrackSpec {
                syncopation: true,
                seed: 2,
                ..base(95.0)
            },
        },
        Case {
            name: "tempo change 100→130".into(),
            spec: TrackSpec {
                tempo_change: Some((8, 130.0)),
                bars: 16,
                ..base(100.0)
            },
        },
        Case {
            name: "tempo change 140→110".into(),
            spec: TrackSpec {
                tempo_change: Some((9, 110.0)),
                bars: 18,
                ..base(140.0)
            },
        },
        // Fast to slow: over the whole track the bar level repeats best, so the level has
        // to be chosen along a tempo curve, not at one global period. (The bench's track
        // that showed it, kept here so that it stays fixed.)
        Case {
            name: "tempo change 170→130".into(),
            spec: TrackSpec {
                tempo_change: Some((9, 130.0)),
                bars: 18,
                seed: 83,
                sample_rate: 44_100,
                ..base(170.0)
            },
        },
        Case {
            name: "quiet intro 124".into(),
            spec: TrackSpec {
                quiet_intro_bars: 4,
                ..base(124.0)
            },
        },
        Case {
            name: "half-time 150".into(),
            spec: TrackSpec {
                half_time: true,
                ..base(150.0)
            },
        },
        // Even hats at 174 BPM over a kick and snare at 87: the hats between the slow beats
        // are as loud as those on them, so 174 is the beat (the bench's track that showed it).
        Case {
            name: "half-time 174".into(),
            spec: TrackSpec {
                half_time: true,
                seed: 103,
                sample_rate: 44_100,
                ..base(174.0)
            },
        },
        Case {
            name: "waltz 3/4 90".into(),
            spec: TrackSpec {
                meter: 3,
                bars: 12,
                ..base(90.0)
            },
        },
        Case {
            name: "waltz 3/4 150".into(),
            spec: TrackSpec {
                meter: 3,
                bars: 24,
                ..base(150.0)
            },
        },
    ]
}

fn score(case: &Case) -> (f64, BeatGrid) {
    let track = render(&case.spec);
    let grid =
        analyze_samples(&track.samples, track.sample_rate).expect("a synthetic track analyses");
    (f_measure(&track.beats, &grid.beats), grid)
}

#[test]
fn steady_tempo_tracks_score_at_least_095_mean() {
    let scores: Vec<f64> = steady_cases()
        .iter()
        .map(|case| {
            let (f, grid) = score(case);
            eprintln!(
                "{:<24} F = {f:.3}  bpm {:.1}  meter {}",
                case.name, grid.bpm, grid.meter
            );
            f
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    eprintln!("steady mean F = {mean:.3}");
    assert!(mean >= 0.95, "mean F {mean:.3} on steady tracks");
}

#[test]
fn other_categories_are_reported() {
    let mut total = 0.0;
    let mut weak = Vec::new();
    let cases = other_cases();
    for case in &cases {
        let (f, grid) = score(case);
        total += f;
        eprintln!(
            "{:<24} F = {f:.3}  bpm {:.1}  meter {}",
            case.name, grid.bpm, grid.meter
        );
        if f < 0.97 {
            weak.push(format!("{} ({f:.3})", case.name));
        }
    }
    let mean = total / cases.len() as f64;
    eprintln!("other categories mean F = {mean:.3}");
    // The issue reports these rather than holding them to 0.95; its goal is 0.97 on every
    // category, and the mean's floor is set just under what the tracker reaches today (0.997),
    // so a regression in any category shows.
    assert!(weak.is_empty(), "under 0.97: {}", weak.join(", "));
    assert!(mean >= 0.99, "mean F {mean:.3}");
}

#[test]
fn beats_are_not_early_or_late() {
    // A video cuts on these times: a bias of half a frame at 30 fps would be visible.
    let mut offsets = Vec::new();
    for bpm in [70.0, 96.0, 120.0, 140.0, 170.0] {
        for rate in [22_050, 44_100] {
            let track = render(&TrackSpec {
                sample_rate: rate,
                ..TrackSpec::steady(bpm, 16.0)
            });
            let grid = analyze_samples(&track.samples, rate).unwrap();
            for beat in &grid.beats {
                let nearest = track
                    .beats
                    .iter()
                    .map(|t| beat - t)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                    .unwrap();
                if nearest.abs() < 0.07 {
                    offsets.push(nearest);
                }
            }
        }
    }
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    let mean = offsets.iter().sum::<f64>() / offsets.len() as f64;
    eprintln!(
        "beat offset: mean {:.1} ms, median {:.1} ms",
        mean * 1e3,
        median * 1e3
    );
    assert!(
        mean.abs() < 0.005 && median.abs() < 0.005,
        "mean {mean:.4} s, median {median:.4} s"
    );
}
