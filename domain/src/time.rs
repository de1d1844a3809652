//! Time-zone aware date and wall-clock helpers.
//!
//! Users live in IANA time zones; storage and scheduling work in UTC. These pure
//! functions bridge the two: which local day an instant belongs to, which UTC range a
//! local day covers, and when a daily wall-clock reminder next fires. DST transitions
//! are handled explicitly because a "day" can be 23 h, 25 h, start at 01:00 (zones
//! whose midnight is skipped) or, rarely, not exist at all (Pacific/Apia, 2011-12-30).

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;

/// Parse an IANA time-zone name such as `"Europe/Berlin"` (case-sensitive, as stored
/// in the tz database).
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?}: expected an IANA name such as \"Europe/Berlin\"")
    })
}

/// The calendar date on the user's wall clock at instant `at`.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The UTC range `[start, end)` of local day `date` in `tz`.
///
/// Each bound is the first instant at which the local clock reads 00:00 of that day,
/// or, where midnight is skipped by a DST jump, the first valid instant after the
/// jump. Consecutive days therefore tile the timeline with no gaps or overlaps. A day
/// skipped entirely by the zone yields an empty range (`start == end`), as
/// does the last day chrono can represent (no day follows it).
pub fn local_day_bounds(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = date.succ_opt().unwrap_or(date);
    (
        first_instant_at_or_after(date.and_time(NaiveTime::MIN), tz),
        first_instant_at_or_after(next.and_time(NaiveTime::MIN), tz),
    )
}

/// Parse a 24-hour `HH:MM` time; a single-digit hour (`"7:30"`) is accepted too.
pub fn parse_hhmm(s: &str) -> Result<NaiveTime, String> {
    let err = || format!("invalid time {s:?}: expected HH:MM (24-hour, 00:00 to 23:59)");
    let (h, m) = s.split_once(':').ok_or_else(err)?;
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    // Check shape before parsing: `u32::from_str` would accept "+7".
    if !(all_digits(h) && h.len() <= 2 && all_digits(m) && m.len() == 2) {
        return Err(err());
    }
    let hour: u32 = h.parse().map_err(|_| err())?;
    let minute: u32 = m.parse().map_err(|_| err())?;
    // from_hms_opt rejects 24:00 and :60.
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(err)
}

/// The first instant strictly after `after` at which the wall clock in `tz` reads
/// `time`.
///
/// - Spring-forward gap (the time doesn't exist that day): fires at the first valid
///   instant after the gap, e.g. 02:30 in New York on the change day fires at 03:00
///   EDT — the user still gets the reminder that day, as early as possible.
/// - Fall-back overlap (the time occurs twice): fires once, at the earlier instant;
///   the repeat hour never produces a second trigger.
///
/// Past the end of chrono's range, the last instant it can represent.
pub fn next_daily_trigger(time: NaiveTime, tz: Tz, after: DateTime<Utc>) -> DateTime<Utc> {
    let today = local_date(after, tz);
    // Start one day early: resolving a gap moves a trigger forward, so yesterday's
    // occurrence could in principle land after `after`.
    let mut day = today.pred_opt().unwrap_or(today);
    loop {
        let candidate = first_instant_at_or_after(day.and_time(time), tz);
        if candidate > after {
            return candidate;
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => return DateTime::<Utc>::MAX_UTC,
        }
    }
}

/// Map a local wall-clock time to UTC: the instant itself if unique, the earlier one
/// if it occurs twice, or the end of the gap if it doesn't occur at all.
fn first_instant_at_or_after(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => end_of_gap(local, tz),
    }
}

/// For a local time inside a forward jump, find the transition instant: the first
/// UTC instant whose offset differs from the one in force before the gap. Its local
/// reading is the first valid wall-clock time after the gap.
fn end_of_gap(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let offset_at = |ts: i64| -> i32 {
        let utc = DateTime::from_timestamp(ts, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc()
    };

    // Reading the wall time as UTC and stepping back a day lands 10–38 h before the
    // transition (offsets are within ±14 h): safely before the gap, and transitions
    // are never that close together in practice.
    let naive_ts = local.and_utc().timestamp();
    let mut lo = naive_ts - Duration::days(1).num_seconds();
    let before = offset_at(lo);
    // `local` interpreted with the pre-gap offset is at or past the transition.
    let mut hi = naive_ts - i64::from(before);

    if offset_at(hi) == before {
        // Unexpected tz data (e.g. two transitions within a day): fall back to a
        // valid instant that is certainly after the gap.
        return DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    }
    // Invariant: offset_at(lo) == before, offset_at(hi) != before. Transitions fall
    // on whole seconds, so second resolution is exact.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn tz(name: &str) -> Tz {
        parse_timezone(name).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn iana_names_parse() {
        assert_eq!(tz("America/New_York"), chrono_tz::America::New_York);
        assert_eq!(tz("UTC"), chrono_tz::UTC);
        assert_eq!(tz("Pacific/Kiritimati"), chrono_tz::Pacific::Kiritimati);
    }

    #[test]
    fn unknown_time_zone_error_names_the_value() {
        for bad in ["Mars/Olympus_Mons", "", "america/new_york", " UTC"] {
            let err = parse_timezone(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn kiritimati_is_already_tomorrow_while_pago_pago_is_still_today() {
        let at = utc("2026-06-01T11:30:00Z");
        assert_eq!(local_date(at, tz("Pacific/Kiritimati")), d(2026, 6, 2)); // 01:30 +14
        assert_eq!(local_date(at, tz("Pacific/Pago_Pago")), d(2026, 6, 1)); // 00:30 -11
    }

    #[test]
    fn tongatapu_at_1130_utc_is_the_next_local_day() {
        let at = utc("2026-06-01T11:30:00Z");
        assert_eq!(local_date(at, tz("Pacific/Tongatapu")), d(2026, 6, 2)); // 00:30 +13
    }

    #[test]
    fn auckland_date_rolls_over_at_noon_utc_in_winter_and_11_utc_in_summer() {
        let akl = tz("Pacific/Auckland");
        // June: NZST, UTC+12.
        assert_eq!(local_date(utc("2026-06-01T10:59:00Z"), akl), d(2026, 6, 1)); // 22:59
        assert_eq!(local_date(utc("2026-06-01T11:59:59Z"), akl), d(2026, 6, 1)); // 23:59:59
        assert_eq!(local_date(utc("2026-06-01T12:00:00Z"), akl), d(2026, 6, 2)); // 00:00
                                                                                 // January: NZDT, UTC+13.
        assert_eq!(local_date(utc("2026-01-15T10:59:00Z"), akl), d(2026, 1, 15)); // 23:59
        assert_eq!(local_date(utc("2026-01-15T11:00:00Z"), akl), d(2026, 1, 16));
        // 00:00
    }

    #[test]
    fn ordinary_day_is_24_hours_starting_at_local_midnight() {
        let (start, end) = local_day_bounds(d(2026, 6, 1), tz("America/New_York"));
        assert_eq!(start, utc("2026-06-01T04:00:00Z"));
        assert_eq!(end, utc("2026-06-02T04:00:00Z"));
    }

    #[test]
    fn new_york_spring_forward_day_is_23_hours() {
        let (start, end) = local_day_bounds(d(2026, 3, 8), tz("America/New_York"));
        assert_eq!(start, utc("2026-03-08T05:00:00Z"));
        assert_eq!(end, utc("2026-03-09T04:00:00Z"));
        assert_eq!(end - start, Duration::hours(23));
    }

    #[test]
    fn new_york_fall_back_day_is_25_hours() {
        let (start, end) = local_day_bounds(d(2026, 11, 1), tz("America/New_York"));
        assert_eq!(start, utc("2026-11-01T04:00:00Z"));
        assert_eq!(end, utc("2026-11-02T05:00:00Z"));
        assert_eq!(end - start, Duration::hours(25));
    }

    #[test]
    fn sao_paulo_day_without_midnight_starts_at_0100() {
        // 2018-11-04: clocks jumped from 00:00 -03 to 01:00 -02.
        let sp = tz("America/Sao_Paulo");
        let (start, end) = local_day_bounds(d(2018, 11, 4), sp);
        assert_eq!(start, utc("2018-11-04T03:00:00Z"));
        assert_eq!(start.with_timezone(&sp).hour(), 1);
        assert_eq!(end, utc("2018-11-05T02:00:00Z"));
        assert_eq!(end - start, Duration::hours(23));
    }

    #[test]
    fn beirut_day_without_midnight_starts_at_0100() {
        // Lebanon springs forward at 00:00 on the last Sunday of March (2026-03-29).
        let beirut = tz("Asia/Beirut");
        let (start, end) = local_day_bounds(d(2026, 3, 29), beirut);
        assert_eq!(start, utc("2026-03-28T22:00:00Z"));
        assert_eq!(start.with_timezone(&beirut).hour(), 1);
        assert_eq!(end, utc("2026-03-29T21:00:00Z"));
        // The previous day ends exactly where this one starts.
        assert_eq!(local_day_bounds(d(2026, 3, 28), beirut).1, start);
    }

    #[test]
    fn a_day_skipped_by_the_zone_is_an_empty_range() {
        // Samoa jumped from 2011-12-29 23:59:59 -10 to 2011-12-31 00:00 +14.
        let apia = tz("Pacific/Apia");
        let (start, end) = local_day_bounds(d(2011, 12, 30), apia);
        assert_eq!(start, utc("2011-12-30T10:00:00Z"));
        assert_eq!(start, end);
        let (prev_start, prev_end) = local_day_bounds(d(2011, 12, 29), apia);
        assert_eq!(prev_end - prev_start, Duration::hours(24));
        assert_eq!(prev_end, start);
    }

    #[test]
    fn day_bounds_tile_a_year_and_agree_with_local_date() {
        for name in [
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe", // 30-minute DST shift
            "America/Sao_Paulo",
            "Asia/Beirut",
            "Pacific/Chatham", // +12:45 / +13:45
            "Asia/Kolkata",
        ] {
            let zone = tz(name);
            let mut day = d(2018, 1, 1);
            while day < d(2019, 1, 1) {
                let (start, end) = local_day_bounds(day, zone);
                let hours = (end - start).num_minutes() as f64 / 60.0;
                assert!((23.0..=25.0).contains(&hours), "{name} {day}: {hours} h");
                assert_eq!(local_date(start, zone), day, "{name} {day} start");
                assert_eq!(
                    local_date(end - Duration::seconds(1), zone),
                    day,
                    "{name} {day} end"
                );
                let next = day.succ_opt().unwrap();
                assert_eq!(local_day_bounds(next, zone).0, end, "{name} {day} tiling");
                day = next;
            }
        }
    }

    #[test]
    fn hhmm_accepts_two_and_one_digit_hours() {
        assert_eq!(parse_hhmm("07:30"), Ok(hm(7, 30)));
        assert_eq!(parse_hhmm("7:30"), Ok(hm(7, 30)));
        assert_eq!(parse_hhmm("00:00"), Ok(hm(0, 0)));
        assert_eq!(parse_hhmm("23:59"), Ok(hm(23, 59)));
    }

    #[test]
    fn hhmm_rejects_out_of_range_and_malformed_values_naming_the_form() {
        for bad in [
            "24:00", "12:60", "ab", "", "12", "12:5", "12:345", "123:00", "+7:30", "7:+3",
            "07:30:00", " 07:30", "07:30 ", "-1:00", "٧:30",
        ] {
            let err = parse_hhmm(bad).unwrap_err();
            assert!(err.contains("HH:MM"), "{bad:?}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn trigger_later_today_fires_today() {
        let ny = tz("America/New_York");
        let after = utc("2026-06-01T10:00:00Z"); // 06:00 EDT
        assert_eq!(
            next_daily_trigger(hm(7, 30), ny, after),
            utc("2026-06-01T11:30:00Z")
        );
    }

    #[test]
    fn trigger_already_passed_fires_tomorrow() {
        let ny = tz("America/New_York");
        let after = utc("2026-06-01T12:00:00Z"); // 08:00 EDT
        assert_eq!(
            next_daily_trigger(hm(7, 30), ny, after),
            utc("2026-06-02T11:30:00Z")
        );
    }

    #[test]
    fn trigger_is_strictly_after_the_given_instant() {
        let ny = tz("America/New_York");
        let at = utc("2026-06-01T11:30:00Z");
        assert_eq!(
            next_daily_trigger(hm(7, 30), ny, at),
            utc("2026-06-02T11:30:00Z")
        );
        let just_before = at - Duration::nanoseconds(1);
        assert_eq!(next_daily_trigger(hm(7, 30), ny, just_before), at);
    }

    #[test]
    fn trigger_in_the_spring_forward_gap_fires_at_0300_local() {
        let ny = tz("America/New_York");
        let after = utc("2026-03-08T06:00:00Z"); // 01:00 EST
        let fire = next_daily_trigger(hm(2, 30), ny, after);
        assert_eq!(fire, utc("2026-03-08T07:00:00Z"));
        assert_eq!(fire.with_timezone(&ny).time(), hm(3, 0));
        // After that, back to the real 02:30 (EDT) the next day.
        assert_eq!(
            next_daily_trigger(hm(2, 30), ny, fire),
            utc("2026-03-09T06:30:00Z")
        );
    }

    #[test]
    fn trigger_in_the_fall_back_overlap_fires_once_at_the_first_0130() {
        let ny = tz("America/New_York");
        let after = utc("2026-11-01T04:00:00Z"); // 00:00 EDT
        let first = next_daily_trigger(hm(1, 30), ny, after);
        assert_eq!(first, utc("2026-11-01T05:30:00Z")); // 01:30 EDT
                                                        // Not again at 01:30 EST (06:30Z): the next one is the following day.
        let second = next_daily_trigger(hm(1, 30), ny, first);
        assert_eq!(second, utc("2026-11-02T06:30:00Z"));
        // Even when scheduled during the repeated hour.
        let mid_overlap = utc("2026-11-01T06:00:00Z"); // 01:00 EST
        assert_eq!(next_daily_trigger(hm(1, 30), ny, mid_overlap), second);
    }

    #[test]
    fn trigger_in_a_far_east_zone_crosses_the_utc_date() {
        let kiri = tz("Pacific/Kiritimati");
        let after = utc("2026-06-01T11:30:00Z"); // 2026-06-02 01:30 +14
        assert_eq!(
            next_daily_trigger(hm(8, 0), kiri, after),
            utc("2026-06-01T18:00:00Z") // 2026-06-02 08:00 +14
        );
    }

    #[test]
    fn trigger_on_a_skipped_day_fires_at_the_first_instant_after_the_gap() {
        let apia = tz("Pacific/Apia");
        let after = utc("2011-12-30T09:00:00Z"); // 2011-12-29 23:00 -10
                                                 // 08:00 on 2011-12-30 never happened; fire at the jump (31st 00:00 +14).
        let fire = next_daily_trigger(hm(8, 0), apia, after);
        assert_eq!(fire, utc("2011-12-30T10:00:00Z"));
        assert_eq!(
            next_daily_trigger(hm(8, 0), apia, fire),
            utc("2011-12-30T18:00:00Z") // 2011-12-31 08:00 +14
        );
    }

    #[test]
    fn lord_howe_half_hour_gap_fires_at_the_end_of_the_gap() {
        // Lord Howe springs forward 02:00 -> 02:30 (+10:30 -> +11) on 2026-10-04.
        let lh = tz("Australia/Lord_Howe");
        let after = utc("2026-10-03T14:00:00Z"); // 00:30 +10:30
        let fire = next_daily_trigger(hm(2, 15), lh, after);
        assert_eq!(fire.with_timezone(&lh).time(), hm(2, 30));
        assert_eq!(fire, utc("2026-10-03T15:30:00Z"));
    }
}
