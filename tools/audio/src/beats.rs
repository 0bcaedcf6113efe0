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
        let best = if hi >= 0.0 {
            best_predecessor(
                &score,
                &ln_gap,
                t,
                lo.max(0.0).ceil() as usize..=hi.floor() as usize,
                ln_p,
            )
        } else {
            None
        };
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

/// The earlier beat `s` in `range` that maximises `score[s]` minus the penalty for the gap
/// `t - s` against the period `e^ln_p`, and that value. Four lanes side by side, so the
/// compiler vectorises the search (one frame at a time, it was 5 % of the whole run).
fn best_predecessor(
    score: &[f64],
    ln_gap: &[f64],
    t: usize,
    range: std::ops::RangeInclusive<usize>,
    ln_p: f64,
) -> Option<(usize, f64)> {
    const LANES: usize = 4;
    let (first, last) = (*range.start(), *range.end());
    if first > last {
        return None;
    }
    let value = |s: usize| score[s] - TIGHTNESS * (ln_gap[t - s] - ln_p).powi(2);
    let mut best = [f64::NEG_INFINITY; LANES];
    let mut at = [first; LANES];
    let mut s = first;
    while s + LANES <= last + 1 {
        for lane in 0..LANES {
            let v = value(s + lane);
            if v > best[lane] {
                best[lane] = v;
                at[lane] = s + lane;
            }
        }
        s += LANES;
    }
    let mut winner = (at[0], best[0]);
    for lane in 1..LANES {
        // Ties go to the earlier frame, as a plain scan would choose.
        if best[lane] > winner.1 || (best[lane] == winner.1 && at[lane] < winner.0) {
            winner = (at[lane], best[lane]);
        }
    }
    for s in s..=last {
        let v = value(s);
        if v > winner.1 {
            winner = (s, v);
        }
    }
    Some(winner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lanes_choose_what_a_plain_scan_chooses() {
        // Scores with ties and plateaus, every range length from empty to a few lanes.
        let score: Vec<f64> = (0..200).map(|i| f64::from((i * 37 % 11) / 3)).collect();
        let ln_gap: Vec<f64> = (0..200).map(|g| (g.max(1) as f64).ln()).collect();
        for t in 100..200 {
            for (first, last) in [
                (t - 90, t - 20),
                (t - 13, t - 9),
                (t - 5, t - 5),
                (t - 4, t - 7),
            ] {
                for period in [12.0f64, 20.0, 31.5] {
                    let ln_p = period.ln();
                    let plain = (first..=last)
                        .map(|s| (s, score[s] - TIGHTNESS * (ln_gap[t - s] - ln_p).powi(2)))
                        .fold(None, |best: Option<(usize, f64)>, (s, v)| match best {
                            Some((_, b)) if v <= b => best,
                            _ => Some((s, v)),
                        });
                    assert_eq!(
                        best_predecessor(&score, &ln_gap, t, first..=last, ln_p),
                        plain,
                        "t {t}, {first}..={last}, period {period}"
                    );
                }
            }
        }
    }
}
