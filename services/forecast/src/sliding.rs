//! The bookkeeping both sliding windows share (`park_window`, `accuracy`): counts kept per key up to a stored
//! end, moved forward by what entered and left, or recounted when sliding would not be exact or cheaper.

use time::{Duration, OffsetDateTime};

/// What to do with each key's stored window to make it end at `end`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Count from scratch: never counted, counted another way, ending after `end` (a pinned clock moved
    /// back), or more than a window behind (sliding would read more than a recount).
    pub recount: Vec<String>,
    /// Add what entered `(through, end]`, subtract what left `(through - window, end - window]`.
    pub slide: Vec<(String, OffsetDateTime)>,
}

impl Plan {
    /// The plan for keys whose state is `(key, through, counted the current way)`.
    pub fn new(
        states: impl IntoIterator<Item = (String, Option<OffsetDateTime>, bool)>,
        end: OffsetDateTime,
        window: Duration,
    ) -> Plan {
        let mut plan = Plan::default();
        for (key, through, current) in states {
            match through {
                Some(through) if current && through <= end && end - through <= window => {
                    if through < end {
                        plan.slide.push((key, through));
                    }
                }
                _ => plan.recount.push(key),
            }
        }
        plan
    }

    /// Every key whose stored end moves to `end`.
    pub fn moved(&self) -> Vec<&str> {
        self.recount
            .iter()
            .map(String::as_str)
            .chain(self.slide.iter().map(|(key, _)| key.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_slide_only_when_that_is_exact_and_cheaper() {
        let end = OffsetDateTime::from_unix_timestamp(1_781_332_200).unwrap();
        let window = Duration::days(14);
        let plan = Plan::new(
            [
                ("new".to_owned(), None, true),
                ("recalendared".to_owned(), Some(end - Duration::hours(1)), false),
                ("ahead".to_owned(), Some(end + Duration::minutes(1)), true),
                ("far behind".to_owned(), Some(end - Duration::days(15)), true),
                ("behind".to_owned(), Some(end - Duration::hours(1)), true),
                ("current".to_owned(), Some(end), true),
            ],
            end,
            window,
        );
        assert_eq!(plan.recount, ["new", "recalendared", "ahead", "far behind"]);
        assert_eq!(plan.slide, [("behind".to_owned(), end - Duration::hours(1))]);
        assert_eq!(plan.moved(), ["new", "recalendared", "ahead", "far behind", "behind"]);
    }
}
