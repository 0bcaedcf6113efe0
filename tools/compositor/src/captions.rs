//! Caption sidecars: SubRip (.srt) and WebVTT (.vtt).

use std::fmt::Write;

use crate::timeline::Cue;

/// The cues as an SRT document.
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (index, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            index + 1,
            timestamp(cue.start, ','),
            timestamp(cue.end, ','),
            cue.text.trim()
        );
    }
    out
}

/// The cues as a WebVTT document.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        // "-->" would end the cue timing line early; WebVTT has no escape for it.
        let text = cue.text.trim().replace("-->", "->");
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(cue.start, '.'),
            timestamp(cue.end, '.'),
            text
        );
    }
    out
}

fn timestamp(seconds: f64, separator: char) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    let (hours, minutes, secs, ms) = (
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000,
    );
    format!("{hours:02}:{minutes:02}:{secs:02}{separator}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues() -> Vec<Cue> {
        vec![
            Cue {
                start: 0.5,
                end: 2.25,
                text: "Hello".into(),
            },
            Cue {
                start: 3661.0,
                end: 3662.5,
                text: "an hour --> later".into(),
            },
        ]
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        assert_eq!(
            to_srt(&cues()),
            "1\n00:00:00,500 --> 00:00:02,250\nHello\n\n2\n01:01:01,000 --> 01:01:02,500\nan hour --> later\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_no_arrow_in_text() {
        let vtt = to_vtt(&cues());
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.500 --> 00:00:02.250\nHello\n"));
        assert!(vtt.contains("01:01:01.000 --> 01:01:02.500\nan hour -> later\n"));
    }
}
