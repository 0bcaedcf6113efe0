//! Offline beat tracking by dynamic programming over the onset envelope (Ellis 2007), with a
//! beat period that may change along the track.

/// How strongly inter-beat intervals are held to the local period (librosa's default).
const TIGHTNESS: f64 = 100.0;

/// Beat frames: the sequence that maximises onset strength at the beats minus a penalty for
/// intervals that stray from the local period `period[t]`.
pub(crate) fn track(env: &[f32], period: &[f64]) -> Vec<usize> {
    let n = env.len();
    if n == 0 {
        return Vec::new();
    }
    let mut score = vec![0.0f64; n];
    let mut back: Vec<Option<usize>> = vec![None; n];
    // ln(gap) for every gap the search can meet, so the inner loop takes no logarithms.
    let longest = period.iter().copied().fold(0.0f64, f64::max);
    let ln_gap: Vec<f64> = (0..=(2.0 * longest).ceil() as usize + 1)
        .map(|g| (g.max(1) as f64).ln())
        .collect();
    for t in 0..n {
        let p = period[t];
        let ln_p = p.ln();
        let lo = t as f64 - 2.0 * p;
        let hi = t as f64 - p / 2.0;
        let mut best: Option<(usize, f64)> = None;
        if hi >= 0.0 {
            for s in (lo.max(0.0).ceil() as usize)..=(hi.floor() as usize) {
                let penalty = TIGHTNESS * (ln_gap[t - s] - ln_p).powi(2);
                let candidate = score[s] - penalty;
                if best.is_none_or(|(_, b)| candidate > b) {
                    best = Some((s, candidate));
                }
            }
        }
        score[t] = f64::from(env[t]) + best.map_or(0.0, |(_, b)| b.max(0.0));
        back[t] = best.filter(|(_, b)| *b > 0.0).map(|(s, _)| s);
    }
    // End on the best-scoring frame within the last period.
    let last_period = period[n - 1].ceil() as usize;
    let end = (n.saturating_sub(last_period)..n)
        .max_by(|&a, &b| score[a].total_cmp(&score[b]))
        .unwrap_or(n - 1);
    let mut beats = vec![end];
    let mut cursor = end;
    while let Some(prev) = back[cursor] {
        beats.push(prev);
        cursor = prev;
    }
    beats.reverse();
    // The chain may stop early where the music was silent: extend it at the local period.
    let mut first = beats[0] as f64;
    let mut head = Vec::new();
    while first - period[first as usize] >= 0.0 {
        first -= period[first as usize];
        head.push(first.round() as usize);
    }
    head.reverse();
    head.extend(beats);
    head.dedup();
    head
}
