//! Beat-tracking accuracy with mir_eval's definitions.

/// mir_eval's tolerance: an estimated beat within ±70 ms of a reference beat is a hit.
pub const F_MEASURE_WINDOW: f64 = 0.07;
/// mir_eval ignores beats in the first 5 s, where trackers are still settling.
pub const IGNORE_BEFORE: f64 = 5.0;

/// The F-measure of `estimated` beats against `reference` beats, as `mir_eval.beat.f_measure`
/// computes it: both trimmed of beats before 5 s, each reference matched at most once within
/// ±70 ms. 0 when either list is empty after trimming (1 when both are).
pub fn f_measure(reference: &[f64], estimated: &[f64]) -> f64 {
    let reference: Vec<f64> = reference
        .iter()
        .copied()
        .filter(|t| *t >= IGNORE_BEFORE)
        .collect();
    let estimated: Vec<f64> = estimated
        .iter()
        .copied()
        .filter(|t| *t >= IGNORE_BEFORE)
        .collect();
    if reference.is_empty() && estimated.is_empty() {
        return 1.0;
    }
    if reference.is_empty() || estimated.is_empty() {
        return 0.0;
    }
    // Both lists are sorted: a greedy two-pointer match is the maximum matching for
    // intervals of equal width.
    let (mut i, mut j, mut hits) = (0, 0, 0usize);
    while i < reference.len() && j < estimated.len() {
        let d = estimated[j] - reference[i];
        if d.abs() <= F_MEASURE_WINDOW {
            hits += 1;
            i += 1;
            j += 1;
        } else if d < 0.0 {
            j += 1;
        } else {
            i += 1;
        }
    }
    let precision = hits as f64 / estimated.len() as f64;
    let recall = hits as f64 / reference.len() as f64;
    if hits == 0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(start: f64, period: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| start + i as f64 * period).collect()
    }

    #[test]
    fn identical_beats_score_one_and_early_beats_are_ignored() {
        let beats = grid(0.0, 0.5, 40);
        assert_eq!(f_measure(&beats, &beats), 1.0);
        let mut noisy_start = beats.clone();
        noisy_start.insert(1, 0.2);
        assert_eq!(f_measure(&beats, &noisy_start), 1.0);
    }

    #[test]
    fn half_and_double_tempo_score_two_thirds() {
        let reference = grid(5.0, 0.5, 40);
        let double = grid(5.0, 0.25, 80);
        let half = grid(5.0, 1.0, 20);
        assert!((f_measure(&reference, &double) - 2.0 / 3.0).abs() < 0.01);
        assert!((f_measure(&reference, &half) - 2.0 / 3.0).abs() < 0.01);
    }

    #[test]
    fn the_window_is_seventy_milliseconds() {
        let reference = grid(5.0, 0.5, 40);
        let inside: Vec<f64> = reference.iter().map(|t| t + 0.069).collect();
        let outside: Vec<f64> = reference.iter().map(|t| t + 0.071).collect();
        assert_eq!(f_measure(&reference, &inside), 1.0);
        assert_eq!(f_measure(&reference, &outside), 0.0);
        assert_eq!(f_measure(&reference, &[]), 0.0);
    }
}
