//! The planner: scenes whose every boundary sits on a beat, big changes on downbeats at
//! section boundaries, lengths from the pace and the energy curve, and the total length the
//! requested duration rounded to the nearest beat.

use super::state::{CameraMove, Cut, Plan, PlannedScene, SceneSource, Shot};
use montage_audio::BeatGrid;
use montage_models::{Intent, Pace};

/// No scene is shorter than this, in seconds: shorter flashes read as glitches.
const MIN_SCENE_SECONDS: f64 = 0.45;
/// Nor longer than this.
const MAX_SCENE_SECONDS: f64 = 10.0;

/// Why no plan could be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// The grid has too few beats to cut on.
    #[error("the music has {0} beats; at least 4 are needed to cut on")]
    TooFewBeats(usize),
}

/// The tempo's beat period, from the median gap.
fn period(beats: &[f64]) -> f64 {
    let mut gaps: Vec<f64> = beats.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    gaps[gaps.len() / 2].max(1e-3)
}

fn nearest(beats: &[f64], time: f64) -> usize {
    let at = beats.partition_point(|&b| b < time);
    match (at.checked_sub(1), beats.get(at)) {
        (Some(before), Some(&after)) if time - beats[before] <= after - time => before,
        (Some(before), None) => before,
        _ => at,
    }
}

/// Plans `intent` on `grid`; `uploads` of the person's images become scenes. Returns the plan
/// and notices for the person.
pub fn plan(
    intent: &Intent,
    grid: &BeatGrid,
    uploads: usize,
    seed: u64,
) -> Result<(Plan, Vec<String>), PlanError> {
    let beats: Vec<f64> = grid.beats.iter().copied().filter(|&b| b > 0.05).collect();
    if beats.len() < 4 {
        return Err(PlanError::TooFewBeats(beats.len()));
    }
    let mut notices = Vec::new();
    let period = period(&beats);
    let mut end_index = nearest(&beats, intent.duration);
    if intent.duration > beats[beats.len() - 1] + period / 2.0 {
        notices.push(format!(
            "the music's beats end at {:.1} s, so the video is {:.1} s rather than {:.0} s",
            beats[end_index], beats[end_index], intent.duration
        ));
    }
    end_index = end_index.max(1);
    let end = beats[end_index];
    let min_beats = ((MIN_SCENE_SECONDS / period).ceil() as usize).max(1);
    let max_beats = ((MAX_SCENE_SECONDS / period).floor() as usize).max(min_beats);

    // A beat's energy against the track's typical beat: 0.5 is typical, 1 twice as loud or
    // more, so a steady track is steady throughout and only real peaks and lulls count.
    let mut sorted_energy: Vec<f64> = grid
        .beat_energy
        .iter()
        .copied()
        .filter(|e| e.is_finite())
        .collect();
    sorted_energy.sort_by(f64::total_cmp);
    let typical = sorted_energy
        .get(sorted_energy.len() / 2)
        .copied()
        .unwrap_or(0.0);
    let energy_at = |index: usize| -> f64 {
        let raw_index = grid
            .beats
            .iter()
            .position(|&b| (b - beats[index]).abs() < 1e-9);
        match raw_index.and_then(|i| grid.beat_energy.get(i)) {
            Some(e) if typical > 0.0 => (0.5 * e / typical).clamp(0.0, 1.0),
            _ => 0.5,
        }
    };
    let is_downbeat = |index: usize| {
        grid.downbeats
            .iter()
            .any(|&d| (d - beats[index]).abs() < 0.02)
    };
    let meter = usize::from(grid.meter.max(1));

    // Section boundaries: mandatory cuts, on the downbeat nearest each section's start.
    let mut mandatory: Vec<usize> = Vec::new();
    for section in grid.sections.iter().skip(1) {
        let mut index = nearest(&beats, section.start);
        if let Some(down) = (index.saturating_sub(meter / 2)..=(index + meter / 2).min(end_index))
            .filter(|&i| is_downbeat(i))
            .min_by(|&a, &b| {
                (beats[a] - section.start)
                    .abs()
                    .total_cmp(&(beats[b] - section.start).abs())
            })
        {
            index = down;
        }
        if index >= min_beats && index + min_beats <= end_index && !mandatory.contains(&index) {
            mandatory.push(index);
        }
    }
    mandatory.sort_unstable();

    let target_seconds = match intent.pace {
        Pace::Fast => 1.25,
        Pace::Medium => 2.5,
        Pace::Slow => 4.5,
    };
    // Scene lengths are musical: 1, 2, 4, 8 or 16 beats; between two, the longer, so a
    // scene fills a bar before it is cut in half.
    let snap_power = |beats: f64| -> usize {
        let mut best = 1usize;
        for candidate in [1usize, 2, 4, 8, 16] {
            if (candidate as f64 - beats).abs() <= (best as f64 - beats).abs() {
                best = candidate;
            }
        }
        best
    };
    let base = snap_power(target_seconds / period);
    let upload_cap = end_index
        .checked_div(uploads)
        .map_or(usize::MAX, |cap| cap.max(1));
    let want_at = |index: usize| -> usize {
        // The bar ahead, not one beat: backbeats are louder than the beats between them.
        let ahead = (index..(index + meter).min(end_index).max(index + 1)).map(energy_at);
        let energy = ahead.clone().sum::<f64>() / ahead.count() as f64;
        let mut want = base;
        if energy > 0.75 && intent.pace != Pace::Slow {
            want = (want / 2).max(1);
        } else if energy < 0.35 {
            want *= 2;
        }
        want.clamp(min_beats, max_beats)
            .min(upload_cap.max(min_beats))
    };

    // Walk the beats, cutting near each scene's wanted length, on a downbeat when a scene
    // lasts a bar or more.
    let mut starts: Vec<usize> = vec![0];
    let mut section_starts: Vec<bool> = vec![true];
    let mut cursor = 0usize;
    loop {
        let want = want_at(cursor);
        let next_mandatory = mandatory.iter().copied().find(|&m| m > cursor);
        let mut next = cursor + want;
        if want >= meter
            && let Some(down) = (next.saturating_sub(want / 2)..=next + want / 2)
                .filter(|&i| {
                    i > cursor + min_beats.saturating_sub(1) && i < end_index && is_downbeat(i)
                })
                .min_by_key(|&i| i.abs_diff(next))
        {
            next = down;
        }
        let mut forced = false;
        if let Some(m) = next_mandatory
            && next + min_beats > m
        {
            next = m;
            forced = true;
        }
        if next + min_beats > end_index {
            break;
        }
        starts.push(next);
        section_starts.push(forced);
        cursor = next;
    }

    let bpm = 60.0 / period;
    let mut scenes: Vec<PlannedScene> = Vec::with_capacity(starts.len());
    let mut previous_shot: Option<Shot> = None;
    let count = starts.len();
    for (k, &first) in starts.iter().enumerate() {
        let last = starts.get(k + 1).copied().unwrap_or(end_index);
        let start = if k == 0 { 0.0 } else { beats[first] };
        let finish = beats[last];
        let energy = (first..last.max(first + 1)).map(energy_at).sum::<f64>()
            / (last.max(first + 1) - first) as f64;
        let middle = (start + finish) / 2.0;
        let section = grid
            .sections
            .iter()
            .find(|s| middle >= s.start && middle < s.end)
            .map_or_else(|| "main".to_owned(), |s| section_name(s.kind));
        let downbeats = grid
            .downbeats
            .iter()
            .filter(|&&d| d >= start - 0.02 && d < finish - 0.02)
            .count() as u32;
        let shot = choose_shot(k, &section, energy, previous_shot, seed);
        previous_shot = Some(shot);
        let camera = if energy > 0.7 || section == "drop" {
            CameraMove::PushIn
        } else if energy < 0.35 || section == "breakdown" {
            CameraMove::Still
        } else {
            [
                CameraMove::PanRight,
                CameraMove::PullOut,
                CameraMove::PanLeft,
            ][k % 3]
        };
        let camera_speed = if camera == CameraMove::Still {
            0.1
        } else {
            ((bpm / 120.0) * (0.3 + 0.7 * energy)).clamp(0.1, 1.0)
        };
        scenes.push(PlannedScene {
            start,
            end: finish,
            beats: (last - first) as u32,
            downbeats,
            section_start: section_starts[k],
            section,
            energy,
            shot,
            camera,
            camera_speed,
            cut_after: Cut::Hard,
            source: SceneSource::Generated,
        });
    }
    // Soft cuts into quiet new sections, and everywhere at a slow pace.
    for k in 0..count.saturating_sub(1) {
        let next = &scenes[k + 1];
        if intent.pace == Pace::Slow || (next.section_start && next.energy < 0.35) {
            scenes[k].cut_after = Cut::Crossfade;
        }
    }
    if uploads > 0 {
        let n = scenes.len();
        if uploads > n {
            notices.push(format!(
                "{} of your {uploads} images did not fit in {:.0} s; the first {n} are used",
                uploads - n,
                end
            ));
        }
        for j in 0..uploads.min(n) {
            let k = j * n / uploads.min(n);
            scenes[k].source = SceneSource::Upload { index: j };
        }
    }
    Ok((
        Plan {
            duration: end,
            bpm,
            scenes,
        },
        notices,
    ))
}

fn section_name(kind: montage_audio::SectionKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "main".into())
}

fn choose_shot(k: usize, section: &str, energy: f64, previous: Option<Shot>, seed: u64) -> Shot {
    use Shot::*;
    if k == 0 && (section == "intro" || energy < 0.5) {
        return Wide;
    }
    let options: &[Shot] = if energy > 0.7 || section == "drop" {
        &[CloseUp, Detail, Medium]
    } else if energy < 0.35 || matches!(section, "breakdown" | "intro" | "outro") {
        &[Wide, Aerial, Medium]
    } else {
        &[Medium, Wide, CloseUp, Aerial, Detail]
    };
    let offset = (seed as usize).wrapping_add(k) % options.len();
    (0..options.len())
        .map(|i| options[(offset + i) % options.len()])
        .find(|&shot| Some(shot) != previous)
        .unwrap_or(options[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use montage_audio::{EnergyCurve, Section, SectionKind};
    use montage_models::local::parse_intent;

    fn grid(bpm: f64, seconds: f64, sections: &[(f64, SectionKind, f64)]) -> BeatGrid {
        let period = 60.0 / bpm;
        let beats: Vec<f64> = (0..)
            .map(|i| 0.1 + i as f64 * period)
            .take_while(|&t| t < seconds)
            .collect();
        let downbeats = beats.iter().step_by(4).copied().collect();
        let mut bounds: Vec<Section> = Vec::new();
        for (i, &(start, kind, energy)) in sections.iter().enumerate() {
            let end = sections.get(i + 1).map_or(seconds, |s| s.0);
            bounds.push(Section {
                start,
                end,
                kind,
                energy,
            });
        }
        let beat_energy = beats
            .iter()
            .map(|&b| {
                bounds
                    .iter()
                    .find(|s| b >= s.start && b < s.end)
                    .map_or(0.5, |s| s.energy)
            })
            .collect();
        BeatGrid {
            duration: seconds,
            bpm,
            tempo_confidence: 0.9,
            tempo_curve: Vec::new(),
            meter: 4,
            beats,
            downbeats,
            onsets: Vec::new(),
            beat_energy,
            energy: EnergyCurve {
                rate: 10.0,
                values: Vec::new(),
            },
            sections: bounds,
        }
    }

    fn on_a_beat(grid: &BeatGrid, t: f64) -> bool {
        grid.beats.iter().any(|&b| (b - t).abs() < 1e-9)
    }

    #[test]
    fn every_boundary_is_a_beat_and_the_length_is_the_nearest_beat() {
        let grid = grid(120.0, 40.0, &[(0.0, SectionKind::Main, 0.6)]);
        let intent = parse_intent("a 20 second city video");
        let (plan, notices) = plan(&intent, &grid, 0, 1).unwrap();
        assert!(notices.is_empty());
        assert!((plan.duration - 20.1).abs() < 1e-9, "{}", plan.duration);
        assert_eq!(plan.scenes[0].start, 0.0);
        for pair in plan.scenes.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert!(on_a_beat(&grid, pair[1].start));
        }
        assert!(on_a_beat(&grid, plan.scenes.last().unwrap().end));
        assert!(
            plan.scenes
                .iter()
                .all(|s| s.end - s.start >= MIN_SCENE_SECONDS)
        );
    }

    #[test]
    fn pace_sets_scene_length_and_long_scenes_cut_on_downbeats() {
        let grid = grid(120.0, 60.0, &[(0.0, SectionKind::Main, 0.6)]);
        let mean = |prompt: &str| {
            let (plan, _) = plan(&parse_intent(prompt), &grid, 0, 1).unwrap();
            plan.duration / plan.scenes.len() as f64
        };
        let (fast, medium, slow) = (
            mean("fast cuts, 40 s"),
            mean("an epic 40 s trailer"),
            mean("slow, 40 s"),
        );
        assert!(fast < medium && medium < slow, "{fast} {medium} {slow}");
        let (slow_plan, _) = plan(&parse_intent("slow, 40 s"), &grid, 0, 1).unwrap();
        for scene in &slow_plan.scenes[1..] {
            assert!(
                grid.downbeats
                    .iter()
                    .any(|&d| (d - scene.start).abs() < 1e-9),
                "{}",
                scene.start
            );
        }
        assert!(
            slow_plan.scenes[..slow_plan.scenes.len() - 1]
                .iter()
                .all(|s| s.cut_after == Cut::Crossfade)
        );
    }

    #[test]
    fn sections_force_a_cut_on_their_downbeat_and_energy_shapes_the_scenes() {
        let grid = grid(
            120.0,
            40.0,
            &[
                (0.0, SectionKind::Intro, 0.3),
                (8.3, SectionKind::Drop, 1.0),
                (24.0, SectionKind::Breakdown, 0.25),
            ],
        );
        let (plan, _) = plan(&parse_intent("a 36 s epic video"), &grid, 0, 3).unwrap();
        let starts: Vec<f64> = plan.scenes.iter().map(|s| s.start).collect();
        assert!(starts.iter().any(|&s| (s - 8.1).abs() < 1e-9), "{starts:?}");
        assert!(
            starts.iter().any(|&s| (s - 24.1).abs() < 1e-9),
            "{starts:?}"
        );
        let drop: Vec<&PlannedScene> = plan.scenes.iter().filter(|s| s.section == "drop").collect();
        let breakdown: Vec<&PlannedScene> = plan
            .scenes
            .iter()
            .filter(|s| s.section == "breakdown")
            .collect();
        let mean = |scenes: &[&PlannedScene]| {
            scenes.iter().map(|s| s.end - s.start).sum::<f64>() / scenes.len() as f64
        };
        assert!(mean(&drop) < mean(&breakdown));
        assert!(drop.iter().all(|s| s.camera == CameraMove::PushIn
            && matches!(s.shot, Shot::CloseUp | Shot::Detail | Shot::Medium)));
        assert!(breakdown.iter().all(|s| s.camera == CameraMove::Still));
        assert_eq!(plan.scenes[0].shot, Shot::Wide);
        assert!(plan.scenes.windows(2).all(|w| w[0].shot != w[1].shot));
    }

    #[test]
    fn uploads_become_scenes_and_short_music_shortens_the_video() {
        let grid = grid(100.0, 12.0, &[(0.0, SectionKind::Main, 0.6)]);
        let (plan, notices) =
            plan(&parse_intent("a 30 second slideshow, slow"), &grid, 5, 1).unwrap();
        assert!(plan.duration < 12.0);
        assert_eq!(notices.len(), 1, "{notices:?}");
        let uploads: Vec<usize> = plan
            .scenes
            .iter()
            .filter_map(|s| match s.source {
                SceneSource::Upload { index } => Some(index),
                SceneSource::Generated => None,
            })
            .collect();
        assert_eq!(uploads, [0, 1, 2, 3, 4]);
        let few = self::tests::grid(100.0, 3.0, &[]);
        assert_eq!(
            super::plan(
                &parse_intent("x"),
                &BeatGrid {
                    beats: few.beats[..3].to_vec(),
                    ..few.clone()
                },
                0,
                1
            ),
            Err(PlanError::TooFewBeats(3))
        );
    }
}
