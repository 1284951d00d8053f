//! Splitting one load run across processes or machines: [`Shard`] (which part of the
//! run this process sends) and the common start instant ([`parse_start_at`],
//! [`check_start_at`]).
//!
//! A run of rate *R* and count (or duration) *T* split into *N* shards is *N* runs of
//! the same plan, each told its [`Shard`]: shard *i* sends the global send numbers
//! *i*, *i + N*, *i + 2N*, ... of the whole run's open-loop schedule, at their intended
//! times. The union of the shards' intended send times is then exactly the single
//! run's, each shard sends at *R / N*, and the shards' counts add up to the single
//! run's count. Given the same start instant (wall-clock time, so machines agree
//! within their clock synchronisation), the merged result is comparable with one
//! process's run of the whole.
//!
//! What is not split: each shard cycles through all the instances from its own first
//! send, and makes its studies from its own sends (fresh UIDs under a root of its own,
//! disjoint from every other shard's: see [`UidRoot`](crate::UidRoot)), so a study is
//! never shared between shards.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SenderError;

/// The largest number of shards: the shard index takes the last six digits of a
/// fresh UID root.
pub const MAX_SHARDS: u32 = 1_000_000;

/// How far ahead a common start instant may be: further is taken for a mistake
/// (a date typed wrong, seconds read as milliseconds).
pub const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// How late a shard may start after the common start instant: a shard scheduled
/// by a slow orchestrator still joins the run (its first sends are then late, and
/// their latency says so), but one started much later is not part of the same run.
pub const MAX_START_LATE: Duration = Duration::from_secs(5);

/// Part `index` of a run split into `count` shards (`0 <= index < count`), written
/// `index/count` (`0/3`, `1/3`, `2/3`).
///
/// ```
/// use sender::Shard;
///
/// let shard: Shard = "1/3".parse().unwrap();
/// assert_eq!((shard.index(), shard.count()), (1, 3));
/// // Its sends are the whole run's sends 1, 4, 7, ...
/// assert_eq!(shard.global_send(2), 7);
/// // Of 10 sends, it makes 1, 4 and 7.
/// assert_eq!(shard.share_of(10), 3);
/// assert!("3/3".parse::<Shard>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Shard {
    /// The whole run: one shard of one.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Part `index` of `count`.
    ///
    /// # Errors
    /// [`SenderError::InvalidOption`] unless `0 <= index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Result<Self, SenderError> {
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(SenderError::InvalidOption {
                name: "shard",
                value: format!("{index}/{count}"),
                expected: format!(
                    "i/N with 0 <= i < N <= {MAX_SHARDS} (the first of three shards is 0/3)"
                ),
            });
        }
        Ok(Shard { index, count })
    }

    /// Which part, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Of how many parts.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this is the whole run (`0/1`).
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// The whole run's number of this shard's send `k`.
    pub fn global_send(self, k: u64) -> u64 {
        u64::from(self.index) + k * u64::from(self.count)
    }

    /// How many of the whole run's first `total` sends are this shard's.
    pub fn share_of(self, total: u64) -> u64 {
        let index = u64::from(self.index);
        if total > index {
            (total - index - 1) / u64::from(self.count) + 1
        } else {
            0
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = SenderError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Shard::new(index, count).map_err(|_| invalid_shard(text)),
            None => Err(invalid_shard(text)),
        }
    }
}

fn invalid_shard(text: &str) -> SenderError {
    SenderError::InvalidOption {
        name: "shard",
        value: text.to_string(),
        expected: format!(
            "i/N with 0 <= i < N <= {MAX_SHARDS} (the first of three shards is 0/3; in a Kubernetes Indexed Job, $(JOB_COMPLETION_INDEX)/N)"
        ),
    }
}

/// Written as its text, `"i/N"`.
impl Serialize for Shard {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A wall-clock instant given as RFC 3339 (`2026-12-04T10:00:00Z`,
/// `2026-12-04T11:00:00.5+01:00`) or as Unix seconds (`1796378400`, `1796378400.25`).
///
/// # Errors
/// [`SenderError::InvalidOption`] (named `start_at`) for anything else.
pub fn parse_start_at(text: &str) -> Result<SystemTime, SenderError> {
    let invalid = || SenderError::InvalidOption {
        name: "start_at",
        value: text.to_string(),
        expected:
            "a wall-clock time as RFC 3339 (2026-12-04T10:00:00Z) or Unix seconds (1796378400)"
                .into(),
    };
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        let since_epoch = Duration::try_from_secs_f64(seconds).map_err(|_| invalid())?;
        return Ok(UNIX_EPOCH + since_epoch);
    }
    let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| invalid())?;
    let micros = u64::try_from(at.timestamp_micros()).map_err(|_| invalid())?;
    Ok(UNIX_EPOCH + Duration::from_micros(micros))
}

/// How long to wait from `now` until `start_at` (zero when it has just passed).
///
/// # Errors
/// [`SenderError::InvalidOption`] (named `start_at`) when `start_at` is more than
/// [`MAX_START_AHEAD`] away or passed more than [`MAX_START_LATE`] ago.
pub fn check_start_at(start_at: SystemTime, now: SystemTime) -> Result<Duration, SenderError> {
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let refuse = |why: String| SenderError::InvalidOption {
        name: "start_at",
        value: format!("{:.3} (Unix seconds)", unix(start_at)),
        expected: why,
    };
    match start_at.duration_since(now) {
        Ok(ahead) if ahead > MAX_START_AHEAD => Err(refuse(format!(
            "a time at most {} h ahead; it is {:.0} s away (is the clock or the value wrong?)",
            MAX_START_AHEAD.as_secs() / 3600,
            ahead.as_secs_f64()
        ))),
        Ok(ahead) => Ok(ahead),
        Err(late) if late.duration() > MAX_START_LATE => Err(refuse(format!(
            "a time not yet passed (at most {} s ago); it passed {:.1} s ago: give the shards a start instant further ahead",
            MAX_START_LATE.as_secs(),
            late.duration().as_secs_f64()
        ))),
        Err(_) => Ok(Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_read_from_i_slash_n_and_out_of_range_ones_are_refused() {
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::WHOLE);
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
        for bad in ["", "3", "3/3", "-1/3", "1/0", "a/b", "1/3/4", "0/1000001"] {
            let error = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(
                error.contains("shard") && error.contains(bad),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_shares_of_a_count_add_up_to_it() {
        for total in [0u64, 1, 2, 9, 10, 11, 1000] {
            let sum: u64 = (0..3)
                .map(|i| Shard::new(i, 3).unwrap().share_of(total))
                .sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn a_start_instant_is_read_as_rfc_3339_or_unix_seconds() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_378_400);
        assert_eq!(parse_start_at("1796378400").unwrap(), at);
        assert_eq!(parse_start_at("2026-12-04T10:00:00Z").unwrap(), at);
        assert_eq!(parse_start_at("2026-12-04T11:00:00+01:00").unwrap(), at);
        assert_eq!(
            parse_start_at("1796378400.5").unwrap(),
            at + Duration::from_millis(500)
        );
        assert!(parse_start_at("tomorrow").is_err());
        assert!(parse_start_at("-5").is_err());
    }

    #[test]
    fn a_start_instant_far_ahead_or_long_past_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_378_400);
        assert_eq!(
            check_start_at(now + Duration::from_secs(10), now).unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(
            check_start_at(now - Duration::from_secs(2), now).unwrap(),
            Duration::ZERO
        );
        let late = check_start_at(now - Duration::from_secs(60), now).unwrap_err();
        assert!(late.to_string().contains("passed 60.0 s ago"), "{late}");
        let far = check_start_at(now + Duration::from_secs(2 * 86_400), now).unwrap_err();
        assert!(far.to_string().contains("at most 24 h ahead"), "{far}");
    }
}
