//! Whether one stored value matches one key (PS3.4 C.2.2.2): single values, lists,
//! universal matching, `*` and `?` wildcards, DA/TM/DT ranges.

use dicom_core::VR;
use dicom_dictionary_std::tags;

use dimse::trim_value;

use super::{Key, MatchOptions};

pub(super) fn matches(key: &Key, value: &str, options: MatchOptions) -> bool {
    let wanted = key.value.split('\\');
    let mut have = value.split('\\').map(trim_value);
    if key.tag == tags::MODALITIES_IN_STUDY || value.contains('\\') {
        let have: Vec<&str> = have.collect();
        return wanted
            .into_iter()
            .any(|w| have.iter().any(|h| matches_one(key.vr, w, h, options)));
    }
    let h = have.next().unwrap_or("");
    wanted
        .into_iter()
        .any(|w| matches_one(key.vr, w, h, options))
}

pub(super) fn matches_one(vr: VR, wanted: &str, have: &str, options: MatchOptions) -> bool {
    let wanted = trim_value(wanted);
    if wanted.is_empty() || wanted == "*" {
        return true;
    }
    if matches!(vr, VR::DA | VR::TM | VR::DT)
        && wanted.contains('-')
        && !wanted.contains(['*', '?'])
    {
        return in_range(vr, wanted, have);
    }
    if vr == VR::PN {
        let norm = |s: &str| {
            let s = s.trim_end_matches('^').to_string();
            if options.person_name_case_insensitive {
                s.to_lowercase()
            } else {
                s
            }
        };
        return wildcard(&norm(wanted), &norm(have));
    }
    if vr == VR::UI {
        return wanted == have;
    }
    wildcard(wanted, have)
}

/// `*` matches any run of characters, `?` exactly one.
pub(super) fn wildcard(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Range matching: `A-B`, `-B`, `A-`, inclusive. Bounds are compared after padding
/// to full precision: a lower bound with zeros, an upper bound with nines, so that
/// `-12` on a TM includes 12:59:59.
pub(super) fn in_range(vr: VR, range: &str, value: &str) -> bool {
    let Some((low, high)) = range.split_once('-') else {
        return false;
    };
    let normalise = |s: &str| -> String { s.chars().filter(|c| *c != ':' && *c != '.').collect() };
    let width = match vr {
        VR::DA => 8,
        VR::TM => 12,
        _ => 20,
    };
    let pad = |s: &str, fill: char| {
        let mut s = normalise(s);
        while s.len() < width {
            s.push(fill);
        }
        s
    };
    let value = trim_value(value);
    if value.is_empty() {
        return false;
    }
    let v = pad(value, '0');
    let low = trim_value(low);
    let high = trim_value(high);
    (low.is_empty() || v >= pad(low, '0')) && (high.is_empty() || v <= pad(high, '9'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::Tag;

    fn key(tag: Tag, vr: VR, value: &str) -> Key {
        Key {
            tag,
            vr,
            value: value.into(),
        }
    }

    #[test]
    fn wildcards_match_like_the_standard_says() {
        assert!(wildcard("SMI*", "SMITH"));
        assert!(wildcard("*TH", "SMITH"));
        assert!(wildcard("S?ITH", "SMITH"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("S?ITH", "SMYTHE"));
        assert!(wildcard("*M*H*", "SMITH"));
        assert!(!wildcard("smith", "SMITH"));
    }

    #[test]
    fn date_ranges_are_inclusive_and_open_ended() {
        assert!(in_range(VR::DA, "20240101-20241231", "20240101"));
        assert!(in_range(VR::DA, "20240101-20241231", "20241231"));
        assert!(!in_range(VR::DA, "20240101-20241231", "20250101"));
        assert!(in_range(VR::DA, "-20240101", "19991231"));
        assert!(in_range(VR::DA, "20240101-", "20990101"));
        assert!(!in_range(VR::DA, "20240101-", ""));
        assert!(in_range(VR::TM, "10-12", "125959"));
        assert!(!in_range(VR::TM, "10-12", "130000"));
        assert!(in_range(VR::TM, "1000-1030", "10:15:00"));
    }

    #[test]
    fn uid_lists_match_any_listed_uid() {
        let k = key(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3\\1.2.4");
        assert!(matches(&k, "1.2.4", MatchOptions::default()));
        assert!(!matches(&k, "1.2.5", MatchOptions::default()));
        // No wildcards on UIDs.
        let k = key(tags::STUDY_INSTANCE_UID, VR::UI, "1.2.*");
        assert!(!matches(&k, "1.2.4", MatchOptions::default()));
    }

    #[test]
    fn person_names_are_case_sensitive_unless_configured() {
        let k = key(tags::PATIENT_NAME, VR::PN, "doe^j*");
        assert!(!matches(&k, "DOE^JOHN", MatchOptions::default()));
        let ci = MatchOptions {
            person_name_case_insensitive: true,
        };
        assert!(matches(&k, "DOE^JOHN", ci));
        assert!(matches(
            &key(tags::PATIENT_NAME, VR::PN, "DOE^JOHN"),
            "DOE^JOHN^^",
            MatchOptions::default()
        ));
    }
}
