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
    /// The working intervals that start on local `date`, as instants, holidays not yet taken
    /// out (an interval may run past midnight, for days when every hour counts). A local time
    /// that does not exist (inside a spring-forward gap) moves to the gap's end; one that
    /// exists twice (autumn) is its first occurrence.
    fn starting_on(&self, date: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
        let weekday = date.weekday().num_days_from_monday() as usize;
        self.week[weekday]
            .iter()
            .map(move |&(start, end)| (self.instant(date, start), self.instant(date, end)))
            .filter(|(start, end)| start < end)
    }

    /// `[from, to)` without the holidays it crosses. A holiday removes the working time that
    /// falls on that date in the calendar's zone, from its local midnight to the next, whatever
    /// day the interval started on: a night shift from 22:00 into a holiday keeps its two
    /// hours before midnight; one from a holiday into a working day keeps the hours after.
    fn without_holidays(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut pieces = Vec::new();
        let mut cursor = from;
        let mut date = from.with_timezone(&self.time_zone).date_naive();
        let last = to.with_timezone(&self.time_zone).date_naive();
        while date <= last {
            if self.holidays.contains(&date) {
                let (holiday_from, holiday_to) = (
                    self.instant(date, 0),
                    self.instant(date + Duration::days(1), 0),
                );
                if holiday_from > cursor {
                    pieces.push((cursor, holiday_from.min(to)));
                }
                cursor = cursor.max(holiday_to);
            }
            date += Duration::days(1);
        }
        if cursor < to {
            pieces.push((cursor, to));
        }
        pieces
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
            .flat_map(move |n| self.starting_on(first + Duration::days(n)))
            .flat_map(move |(from, to)| self.without_holidays(from, to))
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

    /// A holiday after a night shift keeps the shift's hours before midnight, and a 24×7
    /// week with one holiday loses exactly that day.
    #[test]
    fn a_holiday_removes_exactly_its_own_date() {
        let night = (22 * 60, 30 * 60);
        let shifts = Calendar {
            time_zone: Tz::UTC,
            week: std::array::from_fn(|_| vec![night]),
            holidays: ["2026-12-08".parse().unwrap()].into(),
        };
        // Monday 7th 22:00: two hours before the holiday, then Tuesday 22:00 (a holiday shift
        // starting then runs into Wednesday, which counts from midnight).
        let start = at("2026-12-07T22:00:00Z");
        let counting = Counting::Business(&shifts);
        assert_eq!(
            counting.due(start, 2 * 3600, &[]),
            Some(at("2026-12-08T00:00:00Z"))
        );
        assert_eq!(
            counting.due(start, 3 * 3600, &[]),
            Some(at("2026-12-09T01:00:00Z"))
        );
        let always = Calendar {
            time_zone: "Europe/Berlin".parse().unwrap(),
            week: [
                vec![(0, 7 * 24 * 60)],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
                vec![],
            ],
            holidays: ["2026-12-07".parse().unwrap()].into(),
        };
        // Monday the 7th is off (23:00 UTC on the 6th to 23:00 on the 7th); the rest of the
        // week counts.
        let counting = Counting::Business(&always);
        let start = at("2026-12-06T22:00:00Z");
        assert_eq!(
            counting.due(start, 3600, &[]),
            Some(at("2026-12-06T23:00:00Z"))
        );
        assert_eq!(
            counting.due(start, 3601, &[]),
            Some(at("2026-12-07T23:00:01Z"))
        );
        assert_eq!(
            counting.elapsed(start, at("2026-12-09T23:00:00Z"), &[]),
            3600 + 2 * 24 * 3600
        );
    }

    /// A small deterministic generator for the property test (no dependency for it).
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A random calendar: disjoint intervals over the week on half-hour marks (some crossing
    /// midnight, the last perhaps wrapping into Monday), as `calendars` stores them, and a few
    /// holidays around the dates tested.
    fn random_calendar(random: &mut Random) -> Calendar {
        const WEEK: u64 = 7 * 48;
        let zones = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Shanghai",
            "Australia/Sydney",
        ];
        let mut marks: Vec<u64> = (0..2 * (1 + random.below(4)))
            .map(|_| random.below(WEEK))
            .collect();
        marks.sort_unstable();
        marks.dedup();
        if marks.len() % 2 == 1 {
            marks.pop();
        }
        let mut spans: Vec<(u64, u64)> = marks.chunks(2).map(|p| (p[0], p[1])).collect();
        if random.below(3) == 0
            && let (Some(first), Some(last)) = (spans.first().copied(), spans.last_mut())
        {
            // Wrap past Sunday midnight, stopping short of Monday's first interval.
            last.1 = WEEK + random.below(first.0.max(1));
        }
        if random.below(8) == 0 {
            spans = vec![(0, WEEK)];
        }
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (start, end) in spans.into_iter().filter(|(s, e)| s < e) {
            let (day, at) = ((start / 48) as usize, (start % 48) as u32 * 30);
            week[day].push((at, at + (end - start) as u32 * 30));
        }
        let holidays = (0..random.below(6))
            .map(|_| {
                NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
                    + Duration::days(random.below(280) as i64)
            })
            .collect();
        Calendar {
            time_zone: zones[random.below(zones.len() as u64) as usize]
                .parse()
                .unwrap(),
            week,
            holidays,
        }
    }

    /// The first instant whose local time is `minutes` after `date`'s midnight or later.
    fn local(zone: Tz, date: NaiveDate, minutes: u32) -> DateTime<Utc> {
        let mut wanted = date.and_time(NaiveTime::MIN) + Duration::minutes(minutes.into());
        loop {
            if let Some(t) = zone.from_local_datetime(&wanted).earliest() {
                return t.with_timezone(&Utc);
            }
            wanted += Duration::minutes(1);
        }
    }

    /// Whether the minute from `t` is working time, by the definition: inside an interval
    /// of its own local date or one of the week before, on a date that is no holiday.
    fn works(calendar: &Calendar, t: DateTime<Utc>) -> bool {
        let date = t.with_timezone(&calendar.time_zone).date_naive();
        !calendar.holidays.contains(&date)
            && (0..=7).any(|back| {
                let day = date - Duration::days(back);
                calendar.week[day.weekday().num_days_from_monday() as usize]
                    .iter()
                    .any(|&(s, e)| {
                        local(calendar.time_zone, day, s) <= t
                            && t < local(calendar.time_zone, day, e)
                    })
            })
    }

    /// The due time minute by minute: the end of the `target`th working minute from `start`.
    fn due_by_minutes(calendar: &Calendar, start: DateTime<Utc>, target: i64) -> DateTime<Utc> {
        let (mut t, mut counted) = (start, 0);
        loop {
            if works(calendar, t) {
                counted += 1;
                if counted == target {
                    return t + Duration::minutes(1);
                }
            }
            t += Duration::minutes(1);
        }
    }

    /// The due-time arithmetic against the minute-by-minute definition on random calendars
    /// (zones with and without DST, shifts across midnight, 24×7 weeks, holidays), starts
    /// (on minute marks, around both DST changes) and targets.
    #[test]
    fn due_times_match_a_minute_by_minute_count_on_random_calendars() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        while checked < 150 {
            let calendar = random_calendar(&mut random);
            if calendar.week.iter().all(Vec::is_empty) {
                continue;
            }
            let start =
                at("2027-03-01T00:00:00Z") + Duration::minutes(random.below(280 * 24 * 60) as i64);
            let target = 1 + random.below(24 * 60) as i64;
            let expected = due_by_minutes(&calendar, start, target);
            let counting = Counting::Business(&calendar);
            assert_eq!(
                counting.due(start, target * 60, &[]),
                Some(expected),
                "{calendar:?} from {start} for {target} minutes"
            );
            assert_eq!(counting.elapsed(start, expected, &[]), target * 60);
            checked += 1;
        }
    }
}
