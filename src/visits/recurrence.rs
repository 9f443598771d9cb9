//! Recurring visit plans as RFC 5545 text: one `DTSTART;TZID=<IANA zone>:<local time>`, one
//! `RRULE`, any `EXDATE` lines. The `rrule` crate expands them in the zone, so a 09:00 visit
//! stays at 09:00 local time across DST changes; every walk here is bounded.

use chrono::{DateTime, Utc};
use rrule::{RRuleSet, Tz};

/// Occurrences walked at most per expansion, from DTSTART. A rule yields one occurrence a
/// day at most (sub-daily rules and several times a day are refused) and starts in 1900 or
/// later, so this reaches past the year 2170: no horizon is ever cut short.
const MAX_WALK: usize = 100_000;

/// The earliest DTSTART accepted (see [`MAX_WALK`]).
const EARLIEST_START: &str = "19000101T000000";

/// A validated recurrence.
#[derive(Debug, Clone)]
pub struct Recurrence {
    /// The text in canonical form: upper-case names, `DTSTART;TZID=zone:local`, the RRULE,
    /// every EXDATE with its zone (DTSTART's when it named none), `\n` line ends.
    text: String,
    set: RRuleSet,
}

/// Why a recurrence is refused: the message the `422` shows.
pub type Refusal = String;

/// One content line (RFC 5545 3.1): the name and parameter names upper-cased (they are
/// case-insensitive), parameter values unquoted, the value as given.
struct ContentLine {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl ContentLine {
    fn parse(line: &str) -> Result<Self, Refusal> {
        let (head, value) = line
            .split_once(':')
            .ok_or_else(|| format!("`{line}` is not a `NAME:value` line"))?;
        let mut parts = head.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
        let params = parts
            .map(|param| {
                param
                    .split_once('=')
                    .map(|(k, v)| {
                        (
                            k.trim().to_ascii_uppercase(),
                            v.trim().trim_matches('"').to_owned(),
                        )
                    })
                    .ok_or_else(|| format!("`{param}` in `{line}` is not `NAME=value`"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name,
            params,
            value: value.trim().to_owned(),
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses parameters other than `TZID` and `VALUE=DATE-TIME` (times, not dates).
    fn only_zone_and_date_time(&self) -> Result<(), Refusal> {
        for (key, value) in &self.params {
            match (key.as_str(), value.to_ascii_uppercase().as_str()) {
                ("TZID", _) | ("VALUE", "DATE-TIME") => {}
                ("VALUE", other) => {
                    return Err(format!(
                        "{} must be a date and time (VALUE=DATE-TIME), not {other}",
                        self.name
                    ));
                }
                (other, _) => return Err(format!("{} takes no {other} parameter", self.name)),
            }
        }
        Ok(())
    }
}

/// Checks an RRULE value (upper-cased) for what a visit plan cannot be: more often than daily,
/// several times a day, or numbered weekdays where RFC 5545 forbids them.
fn check_rule(rule: &str) -> Result<(), Refusal> {
    let parts: Vec<(&str, &str)> = rule
        .split(';')
        .filter_map(|part| part.split_once('='))
        .collect();
    let get = |key: &str| parts.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let freq = get("FREQ").unwrap_or_default();
    if matches!(freq, "HOURLY" | "MINUTELY" | "SECONDLY") {
        return Err(
            "visits repeat daily at most: FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY".into(),
        );
    }
    for key in ["BYHOUR", "BYMINUTE", "BYSECOND"] {
        if get(key).is_some_and(|values| values.contains(',')) {
            return Err(format!(
                "one visit a day at most: {key} takes one value (a plan per time of day \
                 plans several)"
            ));
        }
    }
    // RFC 5545 3.3.10: a numbered BYDAY (`+1TU`, `-1TH`) only with FREQ=MONTHLY or YEARLY.
    let numbered = get("BYDAY").is_some_and(|days| {
        days.split(',')
            .any(|day| day.starts_with(['+', '-']) || day.starts_with(|c: char| c.is_ascii_digit()))
    });
    if numbered && matches!(freq, "DAILY" | "WEEKLY") {
        return Err(format!(
            "a numbered BYDAY (such as 1MO or -1FR) needs FREQ=MONTHLY or YEARLY, not {freq}"
        ));
    }
    Ok(())
}

impl Recurrence {
    /// Parses and checks a recurrence: one DTSTART naming its IANA zone at a local time that
    /// exists exactly once there (not before 1900), one RRULE repeating at most daily and
    /// once a day, any EXDATE lines (read in DTSTART's zone when they name none). Names are
    /// case-insensitive and `VALUE=DATE-TIME` may be given, as RFC 5545 allows.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(ContentLine::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let named = |name: &'static str| lines.iter().filter(move |l| l.name == name);
        let (mut starts, mut rules) = (named("DTSTART"), named("RRULE"));
        let (Some(start), None, Some(rule), None) =
            (starts.next(), starts.next(), rules.next(), rules.next())
        else {
            return Err("needs exactly one DTSTART line and one RRULE line".into());
        };
        if let Some(other) = lines
            .iter()
            .find(|l| !matches!(l.name.as_str(), "DTSTART" | "RRULE" | "EXDATE"))
        {
            return Err(format!(
                "only DTSTART, RRULE and EXDATE lines are accepted, not {}",
                other.name
            ));
        }
        start.only_zone_and_date_time()?;
        let Some(zone) = start.param("TZID") else {
            return Err(
                "DTSTART must name its time zone: DTSTART;TZID=Asia/Shanghai:20261201T090000"
                    .into(),
            );
        };
        if start.value.ends_with(['Z', 'z']) {
            return Err(
                "DTSTART with TZID is a local time: drop the Z (or the TZID, to give UTC)".into(),
            );
        }
        if start.value.as_str() < EARLIEST_START {
            return Err("DTSTART must be in 1900 or later".into());
        }
        if !rule.params.is_empty() {
            return Err("RRULE takes no parameters".into());
        }
        let rule_value = rule.value.to_ascii_uppercase();
        check_rule(&rule_value)?;
        let mut canonical = vec![
            format!("DTSTART;TZID={zone}:{}", start.value),
            format!("RRULE:{rule_value}"),
        ];
        for exdate in named("EXDATE") {
            exdate.only_zone_and_date_time()?;
            let values: Vec<&str> = exdate.value.split(',').map(str::trim).collect();
            let utc = values.iter().filter(|v| v.ends_with(['Z', 'z'])).count();
            canonical.push(match (exdate.param("TZID"), utc) {
                (Some(zone), 0) => format!("EXDATE;TZID={zone}:{}", values.join(",")),
                (None, 0) => format!("EXDATE;TZID={zone}:{}", values.join(",")),
                (None, n) if n == values.len() => {
                    format!("EXDATE:{}", values.join(",").to_ascii_uppercase())
                }
                _ => {
                    return Err(
                        "an EXDATE line is either local times (in its TZID, or DTSTART's) or \
                         all UTC (ending in Z)"
                            .into(),
                    );
                }
            });
        }
        let text = canonical.join("\n");
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
    fn rfc_5545_spellings_are_read_and_stored_in_one_form() {
        let r = Recurrence::parse(
            "dtstart;value=date-time;tzid=Asia/Shanghai:20261201T090000\n\
             rrule:freq=weekly;byday=mo,th;count=4\n\
             exdate:20261203T090000",
        )
        .unwrap();
        assert_eq!(
            r.text(),
            "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH;COUNT=4\n\
             EXDATE;TZID=Asia/Shanghai:20261203T090000"
        );
        // An EXDATE naming no zone is DTSTART's local time, on any machine: 09:00 Shanghai is
        // 01:00 UTC, and Thursday 3 December is gone.
        assert_eq!(
            all(&r),
            [
                utc(2026, 12, 7, 1, 0),
                utc(2026, 12, 10, 1, 0),
                utc(2026, 12, 14, 1, 0)
            ]
        );
        let utc_exdate = Recurrence::parse(
            "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY;COUNT=3\n\
             EXDATE:20261202T010000Z",
        )
        .unwrap();
        assert_eq!(
            all(&utc_exdate),
            [utc(2026, 12, 1, 1, 0), utc(2026, 12, 3, 1, 0)]
        );
    }

    #[test]
    fn what_rfc_5545_forbids_or_a_plan_cannot_be_is_refused() {
        for (text, why) in [
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=WEEKLY;BYDAY=+1TU",
                "numbered BYDAY",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY;BYDAY=-1TH",
                "numbered BYDAY",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000Z\nRRULE:FREQ=DAILY",
                "drop the Z",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY;BYHOUR=9,14",
                "one visit a day",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY;BYMINUTE=0,30",
                "one visit a day",
            ),
            (
                "DTSTART;VALUE=DATE;TZID=Asia/Shanghai:20261201\nRRULE:FREQ=DAILY",
                "DATE-TIME",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:18991231T090000\nRRULE:FREQ=DAILY",
                "1900",
            ),
            (
                "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=DAILY\n\
                 EXDATE:20261202T090000,20261203T010000Z",
                "all UTC",
            ),
        ] {
            let refusal = Recurrence::parse(text).unwrap_err();
            assert!(refusal.contains(why), "{text}: {refusal}");
        }
        let monthly =
            "DTSTART;TZID=Asia/Shanghai:20261201T090000\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=2";
        assert_eq!(
            all(&Recurrence::parse(monthly).unwrap()),
            [utc(2026, 12, 25, 1, 0), utc(2027, 1, 29, 1, 0)]
        );
    }

    /// A rule from long ago plans exactly what it has in the horizon, checked against an
    /// independent computation: every local day at 09:00 in the zone.
    #[test]
    fn a_start_decades_ago_still_plans_every_occurrence_in_the_horizon() {
        use chrono::{Duration, NaiveTime};
        let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let r = Recurrence::parse("DTSTART;TZID=Europe/Berlin:19970902T090000\nRRULE:FREQ=DAILY")
            .unwrap();
        let (from, to) = (utc(2026, 12, 7, 12, 0), utc(2027, 6, 5, 12, 0));
        let mut expected = Vec::new();
        let mut day = from.with_timezone(&zone).date_naive();
        while let Some(at) = zone
            .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap()))
            .single()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t < to)
        {
            if at >= from {
                expected.push(at);
            }
            day += Duration::days(1);
        }
        assert_eq!(expected.len(), 180);
        assert_eq!(r.between(from, to, 400), expected);
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
