//! The two small text rules every DICOM reader needs: values lose their padding
//! ([`trim_value`]) and errors are shown with their causes ([`ErrorChain`]).

use std::error::Error;
use std::fmt;

/// A value without the padding DICOM adds to reach an even length: trailing NULs
/// (UIDs) and spaces (text), plus leading spaces, which are not significant in the
/// string VRs either (PS3.5 §6.2).
///
/// ```
/// assert_eq!(dimse::trim_value("1.2.840.10008.1.1\0"), "1.2.840.10008.1.1");
/// assert_eq!(dimse::trim_value(" CT "), "CT");
/// ```
pub fn trim_value(value: &str) -> &str {
    value.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// Shows an error followed by each of its sources, `outer: inner: root`, leaving out a
/// source whose text the error already contains (many errors print their source
/// inline).
///
/// ```
/// let io = std::io::Error::other("disk full");
/// let text = dimse::ErrorChain(&io).to_string();
/// assert_eq!(text, "disk full");
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(e) = source {
            let next = e.to_string();
            if !shown.contains(&next) {
                shown.push_str(": ");
                shown.push_str(&next);
            }
            source = e.source();
        }
        f.write_str(&shown)
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /data/a.dcm")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /data/a.dcm: {0}")]
    struct Inline(#[source] std::io::Error);

    #[test]
    fn sources_follow_the_error() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(
            ErrorChain(&e).to_string(),
            "cannot read /data/a.dcm: permission denied"
        );
    }

    #[test]
    fn a_source_already_shown_inline_is_not_repeated() {
        let e = Inline(std::io::Error::other("permission denied"));
        assert_eq!(
            ErrorChain(&e).to_string(),
            "cannot read /data/a.dcm: permission denied"
        );
    }

    #[test]
    fn padding_goes_and_inner_spaces_stay() {
        assert_eq!(trim_value("MY PACS \0"), "MY PACS");
        assert_eq!(trim_value(""), "");
    }
}
