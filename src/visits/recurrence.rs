//! Recurring visit plans as RFC 5545 text: one `DTSTART;TZID=<IANA zone>:<local time>`, one
//! `RRULE`, any `EXDATE` lines. The `rrule` crate expands them in the zone, so a 09:00 visit
//! stays at 09:00 local time across DST changes; every walk here is bounded.

use chrono::{DateTime, Utc};
use rrule::{RRuleSet, Tz};

/// Occurrences walked at most per expansion, from DTSTART (a daily plan of 25 years).
const MAX_WALK: usize = 10_000;

/// A validated recurrence.
#[derive(Debug, Clone)]
pub struct Recurrence {
    /// The text as given, normalised to `\n` line ends.
    text: String,
    set: RRuleSet,
}

/// Why a recurrence is refused: the message the `422` shows.
pub type Refusal = String;

impl Recurrence {
    /// Parses and checks a recurrence: DTSTART must name its IANA zone and be a local time
    /// that exists exactly once there; the rule must repeat daily or less often (the crate
    /// mishandles sub-daily rules across DST); only DTSTART, RRULE and EXDATE lines.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let starts = lines.iter().filter(|l| l.starts_with("DTSTART")).count();
        let rules: Vec<&&str> = lines.iter().filter(|l| l.starts_with("RRULE:")).collect();
        if starts != 1 || rules.len() != 1 {
            return Err("needs exactly one DTSTART line and one RRULE line".into());
        }
        if let Some(other) = lines.iter().find(|l| {
            !(l.starts_with("DTSTART") || l.starts_with("RRULE:") || l.starts_with("EXDATE"))
        }) {
            return Err(format!(
                "only DTSTART, RRULE and EXDATE lines are accepted, not `{other}`"
            ));
        }
        let start = lines
            .iter()
            .find(|l| l.starts_with("DTSTART"))
            .copied()
            .unwrap_or_default();
        if !start.starts_with("DTSTART;TZID=") {
            return Err(
                "DTSTART must name its time zone: DTSTART;TZID=Asia/Shanghai:20261201T090000"
                    .into(),
            );
        }
        let rule = rules[0].to_ascii_uppercase();
        if ["HOURLY", "MINUTELY", "SECONDLY"]
            .iter()
            .any(|f| rule.contains(&format!("FREQ={f}")))
        {
            return Err(
                "visits repeat daily at most: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY".into(),
            );
        }
        let text = lines.join("\n");
        let set: RRuleSet = text.parse().map_err(|e: rrule::RRuleError| e.to_string())?;
        if matches!(set.get_dt_start().timezone(), Tz::Local(_)) {
            return Err("DTSTART must name an IANA time zone".into());
        }
        Ok(Self { text, set })
    }

    /// The text to store.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first occurrence's start.
    pub fn start(&self) -> DateTime<Utc> {
        self.set.get_dt_start().with_timezone(&Utc)
    }

    /// Occurrence starts in `[from, to)`, at most `limit` of them.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.walk()
            .take_while(|at| *at < to)
            .filter(|at| *at >= from)
            .take(limit)
            .collect()
    }

    /// How many occurrences start before `at`.
    pub fn count_before(&self, at: DateTime<Utc>) -> usize {
        self.walk().take_while(|t| *t < at).count()
    }

    fn walk(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.set
            .clone()
            .into_iter()
            .take(MAX_WALK)
            .map(|t| t.with_timezone(&Utc))
    }

    /// Splits the series at the occurrence starting `at` ("this and following"): the old
    /// series ends just before it (`UNTIL`), the new one starts there in the same zone, and a
    /// `COUNT` is shared out so that the two together have as many occurrences as before.
    /// `None` when no occurrence starts at `at`.
    pub fn split(&self, at: DateTime<Utc>) -> Option<(Recurrence, Recurrence)> {
        if !self.walk().take_while(|t| *t <= at).any(|t| t == at) {
            return None;
        }
        // COUNT counts the rule's instances before EXDATE takes any out (RFC 5545 3.8.5.1).
        let rule_only: Vec<&str> = self
            .text
            .lines()
            .filter(|l| !l.starts_with("EXDATE"))
            .collect();
        let before = Self::parse(&rule_only.join("\n")).ok()?.count_before(at);
        if before == 0 {
            return None;
        }
        let zone = self.set.get_dt_start().timezone();
        let rule_line = self.line("RRULE:").unwrap_or_default();
        let parts: Vec<&str> = rule_line["RRULE:".len()..].split(';').collect();
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.starts_with("COUNT=") && !p.starts_with("UNTIL="))
            .collect();
        let count = parts
            .iter()
            .find_map(|p| p.strip_prefix("COUNT="))
            .and_then(|c| c.parse::<usize>().ok());
        let until = parts.iter().copied().find(|p| p.starts_with("UNTIL="));
        let exdates: Vec<&str> = self.lines("EXDATE").collect();
        let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        let old_end = stamp(at - chrono::Duration::seconds(1));
        let old = format!(
            "{}\nRRULE:{};UNTIL={old_end}{}",
            self.line("DTSTART").unwrap_or_default(),
            kept.join(";"),
            exdates.iter().map(|e| format!("\n{e}")).collect::<String>()
        );
        let local = at.with_timezone(&zone).format("%Y%m%dT%H%M%S");
        let tail = match (count, until) {
            (Some(count), _) => format!(";COUNT={}", count.saturating_sub(before).max(1)),
            (None, Some(until)) => format!(";{until}"),
            (None, None) => String::new(),
        };
        let new = format!(
            "DTSTART;TZID={}:{local}\nRRULE:{}{tail}{}",
            zone.name(),
            kept.join(";"),
            exdates.iter().map(|e| format!("\n{e}")).collect::<String>()
        );
        Some((Self::parse(&old).ok()?, Self::parse(&new).ok()?))
    }

    fn line<'a>(&'a self, prefix: &'a str) -> Option<&'a str> {
        self.lines(prefix).next()
    }

    fn lines<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.text.lines().filter(move |l| l.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn all(r: &Recurrence) -> Vec<DateTime<Utc>> {
        r.between(utc(2000, 1, 1, 0, 0), utc(2100, 1, 1, 0, 0), 1000)
    }

    #[test]
    fn local_time_holds_across_dst_changes() {
        // Europe/Berlin leaves summer time on 2026-10-25: 09:00 local is 07:00 UTC before,
        // 08:00 UTC after.
        let r = Recurrence::parse(
            "DTSTART;TZID=Europe/Berlin:20261019T090000\nRRULE:FREQ=WEEKLY;COUNT=3",
        )
        .unwrap();
        assert_eq!(
            all(&r),
            [
                utc(2026, 10, 19, 7, 0),
                utc(2026, 10, 26, 8, 0),
                utc(2026, 11, 2, 8, 0)
            ]
        );
        // And into summer time on 2027-03-28 (New York: 2027-03-14).
        let r = Recurrence::parse(
            "DTSTART;TZID=America/New_York:20270313T100000\nRRULE:FREQ=DAILY;COUNT=2",
        )
        .unwrap();
        assert_eq!(all(&r), [utc(2027, 3, 13, 15, 0), utc(2027, 3, 14, 14, 0)]);
    }

    #[test]
    fn the_31st_skips_shorter_months_and_the_last_day_does_not() {
        let r = Recurrence::parse(
            "DTSTART;TZID=Asia/Shanghai:20270131T100000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3",
        )
        .unwrap();
        assert_eq!(
            all(&r),
            [
                utc(2027, 1, 31, 2, 0),
                utc(2027, 3, 31, 2, 0),
                utc(2027, 5, 31, 2, 0)
            ]
        );
        let r = Recurrence::parse(
            "DTSTART;TZID=Asia/Shanghai:20270131T100000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
        )
        .unwrap();
        assert_eq!(
            all(&r),
            [
                utc(2027, 1, 31, 2, 0),
                utc(2027, 2, 28, 2, 0),
                utc(2027, 3, 31, 2, 0)
            ]
        );
    }

    #[test]
    fn exdate_removes_an_occurrence() {
        let r = Recurrence::parse(
            "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;TZID=Asia/Shanghai:20261202T090000",
        )
        .unwrap();
        assert_eq!(all(&r), [utc(2026, 12, 1, 1, 0), utc(2026, 12, 3, 1, 0)]);
    }

    #[test]
    fn refuses_what_it_cannot_place() {
        for (text, why) in [
            ("DTSTART:20261201T090000\nRRULE:FREQ=DAILY", "time zone"),
            ("DTSTART:20261201T090000Z\nRRULE:FREQ=DAILY", "time zone"),
            // 02:30 on 2026-10-25 happens twice in Berlin, and never on 2027-03-28.
            (
                "DTSTART;TZID=Europe/Berlin:20261025T023000\nRRULE:FREQ=DAILY",
                "ambiguous",
            ),
            (
                "DTSTART;TZID=Europe/Berlin:20270328T023000\nRRULE:FREQ=DAILY",
                "",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=HOURLY",
                "daily",
            ),
            ("DTSTART;TZID=Asia/Shanghai:20261201T090000", "RRULE"),
            (
                "DTSTART;TZID=Mars/Olympus:20261201T090000\nRRULE:FREQ=DAILY",
                "",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY\nRDATE:20261205T090000",
                "only",
            ),
        ] {
            let refusal = Recurrence::parse(text).unwrap_err();
            assert!(refusal.contains(why), "{text}: {refusal}");
        }
    }

    #[test]
    fn this_and_following_keeps_the_remaining_count() {
        let r = Recurrence::parse(
            "DTSTART;TZID=Europe/Berlin:20261019T090000\nRRULE:FREQ=WEEKLY;COUNT=6",
        )
        .unwrap();
        let every = all(&r);
        let (old, new) = r.split(every[2]).unwrap();
        assert_eq!(all(&old), every[..2]);
        assert_eq!(all(&new), every[2..]);
        assert!(new.text().contains("COUNT=4"), "{}", new.text());
        assert!(
            r.split(every[0]).is_none(),
            "splitting at the first is editing the whole"
        );
        assert!(r.split(every[2] + chrono::Duration::minutes(1)).is_none());
        // Without COUNT the new series runs on as the old did.
        let open =
            Recurrence::parse("DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY")
                .unwrap();
        let first = open.between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 5);
        let (old, new) = open.split(first[3]).unwrap();
        assert_eq!(all(&old).len(), 3);
        assert_eq!(
            new.between(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 2),
            first[3..5]
        );
    }
}
