//! What the run and chat request bodies share: formats and intent choices parsed once, and the
//! request errors as API errors.

use super::error::ApiError;
use crate::pipeline::IntentOverrides;
use crate::pipeline::request::{self, RequestError};
use montage_models::{Category, Mood, Pace};

/// A request's problem as the API answers it: the store's failures are ours, the rest the
/// caller's.
pub(super) fn request_error(error: RequestError) -> ApiError {
    match error {
        RequestError::Store(store) => ApiError::internal(&store),
        other => ApiError::invalid(other.to_string()),
    }
}

/// The intent choices of a request, checked.
pub(super) fn overrides(
    category: Option<Category>,
    mood: Option<Mood>,
    pace: Option<Pace>,
    style: Option<Vec<String>>,
) -> Result<IntentOverrides, ApiError> {
    let style = style
        .map(|words| {
            if words.len() > MAX_STYLE_WORDS || words.iter().any(|w| w.chars().count() > 40) {
                return Err(ApiError::invalid(format!(
                    "style: at most {MAX_STYLE_WORDS} words of at most 40 characters"
                )));
            }
            Ok(words
                .iter()
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect::<Vec<String>>())
        })
        .transpose()?;
    Ok(IntentOverrides {
        category,
        mood,
        pace,
        style,
    })
}

/// Style words a request may choose.
const MAX_STYLE_WORDS: usize = 8;

/// Format names, checked.
pub(super) fn formats(
    names: Option<&Vec<String>>,
) -> Result<Option<Vec<montage_models::Format>>, ApiError> {
    names
        .map(|names| {
            request::formats_named(names.iter().map(String::as_str)).map_err(request_error)
        })
        .transpose()
}
