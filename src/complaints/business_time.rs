//! Business time: which instants count towards an SLA clock. A calendar holds working
//! intervals per weekday in an IANA time zone (a lunch break is two intervals) and holiday
//! dates; without one, every instant counts. Pure functions of explicit times, so the tests
//! drive them with any clock.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A half-open span of time `[from, to)`; `to` is `None` while it is still open (a pause
/// that has not ended).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// Working hours: per weekday (Monday first) the intervals in minutes after local midnight,
/// and the holidays on which none count.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub time_zone: Tz,
    pub week: [Vec<(u32, u32)>; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

/// How far ahead a due time is looked for (a calendar whose hours never come is never due):
/// a year's target in minutes at eight hours a week needs about 21 years.
const HORIZON_DAYS: i64 = 25 * 366;

impl Calendar {
    /// The working intervals of one local date, as instants. A local time that does not
    /// exist (inside a spring-forward gap) moves to the gap's end; one that exists twice
    /// (autumn) is its first occurrence.
    fn day(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let weekday = date.weekday().num_days_from_monday() as usize;
        self.week[weekday]
            .iter()
            .map(|&(start, end)| (self.instant(date, start), self.instant(date, end)))
            .filter(|(start, end)| start < end)
            .collect()
    }

    /// The instant of `minutes` after local midnight of `date` (1440 is the next midnight).
    fn instant(&self, date: NaiveDate, minutes: u32) -> DateTime<Utc> {
        let local = NaiveDateTime::new(date, NaiveTime::MIN) + Duration::minutes(minutes.into());
        // A gap is at most a few hours; walk out of it a minute at a time.
        (0..=24 * 60)
            .find_map(|skip| {
                self.time_zone
                    .from_local_datetime(&(local + Duration::minutes(skip)))
                    .earliest()
            })
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
    }

    /// Working intervals from `start` on, in order, clipped to begin no earlier than it.
    fn intervals_from(
        &self,
        start: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        // Start a week early: an interval may run for days (a whole week when every hour
        // counts), so one that began on an earlier date may still be open at `start`.
        let first = start.with_timezone(&self.time_zone).date_naive() - Duration::days(7);
        (0..HORIZON_DAYS)
            .flat_map(move |n| self.day(first + Duration::days(n)))
            .filter(move |(_, end)| *end > start)
            .map(move |(from, to)| (from.max(start), to))
    }
}

/// What counts towards a clock: every instant, or a calendar's working time.
#[derive(Debug, Clone, Copy)]
pub enum Counting<'a> {
    Always,
    Business(&'a Calendar),
}

impl Counting<'_> {
    /// Calls `visit` with each counted interval from `start` on, in order, with `pauses`
    /// (sorted, non-overlapping) cut out, until it returns `false`.
    fn walk(
        &self,
        start: DateTime<Utc>,
        pauses: &[Span],
        mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> bool,
    ) {
        let far = start + Duration::days(HORIZON_DAYS);
        let base: Box<dyn Iterator<Item = _>> = match self {
            Self::Always => Box::new(std::iter::once((start, far))),
            Self::Business(calendar) => Box::new(calendar.intervals_from(start)),
        };
        for (mut from, to) in base {
            for pause in pauses {
                let pause_end = pause.to.unwrap_or(far);
                if pause_end <= from || pause.from >= to {
                    continue;
                }
                if pause.from > from && !visit(from, pause.from) {
                    return;
                }
                from = from.max(pause_end);
                if from >= to {
                    break;
                }
            }
            if from < to && !visit(from, to) {
                return;
            }
            // An open pause stops the count: nothing after its start is counted yet.
            if pauses.last().is_some_and(|p| p.to.is_none() && p.from < to) {
                return;
            }
        }
    }

    /// The instant at which `target_seconds` of counted time have passed since `start`,
    /// leaving out the pauses; `None` while a pause is open (the clock is stopped) or when the
    /// calendar never provides that much time within the horizon (25 years).
    pub fn due(
        &self,
        start: DateTime<Utc>,
        target_seconds: i64,
        pauses: &[Span],
    ) -> Option<DateTime<Utc>> {
        if pauses.iter().any(|p| p.to.is_none()) {
            return None;
        }
        let (mut left, mut due) = (target_seconds, None);
        self.walk(start, pauses, |from, to| {
            let length = (to - from).num_seconds();
            if left <= length {
                due = Some(from + Duration::seconds(left));
                return false;
            }
            left -= length;
            true
        });
        due
    }

    /// Counted seconds between `start` and `until`, pauses left out.
    pub fn elapsed(&self, start: DateTime<Utc>, until: DateTime<Utc>, pauses: &[Span]) -> i64 {
        let mut total = 0;
        self.walk(start, pauses, |from, to| {
            if from >= until {
                return false;
            }
            total += (to.min(until) - from).num_seconds();
            true
        });
        total
    }
}

/// Wall-clock seconds of the pauses that have ended.
pub fn paused_seconds(pauses: &[Span]) -> i64 {
    pauses
        .iter()
        .filter_map(|p| p.to.map(|to| (to - p.from).num_seconds()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Monday to Friday 09:00–12:00 and 13:00–18:00 (a lunch break), in `zone`.
    fn office(zone: &str, holidays: &[&str]) -> Calendar {
        let day = vec![(9 * 60, 12 * 60), (13 * 60, 18 * 60)];
        Calendar {
            time_zone: zone.parse().unwrap(),
            week: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn calendar_time_counts_every_instant() {
        let start = at("2026-12-04T17:00:00Z");
        assert_eq!(
            Counting::Always.due(start, 3600, &[]),
            Some(at("2026-12-04T18:00:00Z"))
        );
    }

    #[test]
    fn a_lunch_break_does_not_count() {
        let calendar = office("UTC", &[]);
        // Monday 11:00 + 2 h of work: 11–12, then 13–14.
        let due = Counting::Business(&calendar).due(at("2026-11-30T11:00:00Z"), 7200, &[]);
        assert_eq!(due, Some(at("2026-11-30T14:00:00Z")));
    }

    #[test]
    fn a_weekend_does_not_count() {
        let calendar = office("UTC", &[]);
        // Friday 17:00 + 2 h: one hour on Friday, one on Monday morning.
        let due = Counting::Business(&calendar).due(at("2026-12-04T17:00:00Z"), 7200, &[]);
        assert_eq!(due, Some(at("2026-12-07T10:00:00Z")));
    }

    #[test]
    fn a_holiday_does_not_count() {
        let calendar = office("UTC", &["2026-12-07"]);
        let due = Counting::Business(&calendar).due(at("2026-12-04T17:00:00Z"), 7200, &[]);
        assert_eq!(due, Some(at("2026-12-08T10:00:00Z")));
    }

    #[test]
    fn a_start_outside_hours_waits_for_the_next_interval() {
        let calendar = office("UTC", &[]);
        let due = Counting::Business(&calendar).due(at("2026-11-28T20:00:00Z"), 1800, &[]);
        assert_eq!(due, Some(at("2026-11-30T09:30:00Z")));
    }

    #[test]
    fn hours_are_local_to_the_calendars_zone() {
        let calendar = office("Asia/Shanghai", &[]);
        // 09:00 in Shanghai is 01:00 UTC.
        let due = Counting::Business(&calendar).due(at("2026-11-30T00:00:00Z"), 3600, &[]);
        assert_eq!(due, Some(at("2026-11-30T02:00:00Z")));
    }

    #[test]
    fn due_times_stay_exact_across_a_dst_change() {
        let calendar = office("Europe/Berlin", &[]);
        // Friday 2026-03-27 17:00 CET (16:00 UTC); clocks go forward on Sunday 29 March.
        // One hour Friday, one hour Monday 09:00–10:00 CEST = 07:00–08:00 UTC.
        let due = Counting::Business(&calendar).due(at("2026-03-27T16:00:00Z"), 7200, &[]);
        assert_eq!(due, Some(at("2026-03-30T08:00:00Z")));
        // And back in autumn: Friday 2026-10-23 17:00 CEST (15:00 UTC), Monday is CET.
        let due = Counting::Business(&calendar).due(at("2026-10-23T15:00:00Z"), 7200, &[]);
        assert_eq!(due, Some(at("2026-10-26T09:00:00Z")));
    }

    #[test]
    fn a_day_with_the_clock_change_counts_its_real_length() {
        // Every hour of the day counts; the spring day has 23 of them.
        let all_day = Calendar {
            time_zone: "Europe/Berlin".parse().unwrap(),
            week: std::array::from_fn(|_| vec![(0, 24 * 60)]),
            holidays: BTreeSet::new(),
        };
        let start = at("2026-03-28T23:00:00Z"); // Sunday 00:00 CET
        let elapsed = Counting::Business(&all_day).elapsed(start, at("2026-03-29T22:00:00Z"), &[]);
        assert_eq!(elapsed, 23 * 3600);
    }

    #[test]
    fn pauses_push_the_due_time_by_the_counted_time_they_cover() {
        let calendar = office("UTC", &[]);
        let pauses = [
            // 1 h of working time paused on Monday morning.
            Span {
                from: at("2026-11-30T09:00:00Z"),
                to: Some(at("2026-11-30T10:00:00Z")),
            },
            // Over lunch: nothing counted was paused, so nothing moves.
            Span {
                from: at("2026-11-30T12:00:00Z"),
                to: Some(at("2026-11-30T13:00:00Z")),
            },
        ];
        let due = Counting::Business(&calendar).due(at("2026-11-30T09:00:00Z"), 3 * 3600, &pauses);
        assert_eq!(due, Some(at("2026-11-30T14:00:00Z")));
        assert_eq!(paused_seconds(&pauses), 7200);
        let elapsed = Counting::Business(&calendar).elapsed(
            at("2026-11-30T09:00:00Z"),
            at("2026-11-30T14:00:00Z"),
            &pauses,
        );
        assert_eq!(elapsed, 3 * 3600);
    }

    #[test]
    fn an_open_pause_stops_the_clock() {
        let pauses = [Span {
            from: at("2026-11-30T09:00:00Z"),
            to: None,
        }];
        assert_eq!(
            Counting::Always.due(at("2026-11-30T08:00:00Z"), 7200, &pauses),
            None
        );
        assert_eq!(
            Counting::Always.elapsed(
                at("2026-11-30T08:00:00Z"),
                at("2026-11-30T12:00:00Z"),
                &pauses
            ),
            3600
        );
        assert_eq!(paused_seconds(&pauses), 0);
    }

    #[test]
    fn a_calendar_without_hours_is_never_due() {
        let never = Calendar {
            time_zone: Tz::UTC,
            week: Default::default(),
            holidays: BTreeSet::new(),
        };
        assert_eq!(
            Counting::Business(&never).due(at("2026-11-30T08:00:00Z"), 60, &[]),
            None
        );
    }
}
