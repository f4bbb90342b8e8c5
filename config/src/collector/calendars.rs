//! `[calendars.NAME]`: service hours per weekday in an IANA zone, with holidays. The
//! built-in `24x7` cannot be redefined; overlapping ranges on a day are refused.

use std::collections::{BTreeMap, BTreeSet};

use crate::calendar::{ALWAYS, Calendar, DayRange, parse_date, parse_hours, parse_timezone};
use crate::id::Id;
use crate::reader::{Fields, Reader, Value, index, join};

/// Every calendar an agreement may name: the built-in `24x7`, each valid definition, and the
/// names of definitions that had errors (so they do not also cascade into "unknown calendar").
pub(super) struct Calendars {
    pub all: BTreeMap<String, Calendar>,
    pub defined: BTreeSet<String>,
}

impl Calendars {
    pub(super) fn knows(&self, name: &str) -> bool {
        self.all.contains_key(name) || self.defined.contains(name)
    }
}

pub(super) fn read_calendars(r: &mut Reader<'_>, top: &Fields<'_, '_>) -> Calendars {
    let mut calendars: BTreeMap<String, Calendar> = BTreeMap::new();
    calendars.insert(ALWAYS.to_string(), Calendar::always());
    let mut defined_calendars: BTreeSet<String> = BTreeSet::new();
    if let Some(v) = top.get("calendars")
        && let Some(map) = r.open_map(v, "calendars")
    {
        for (name, name_pos, value) in map.entries() {
            let path = join("calendars", name);
            if name == ALWAYS {
                r.error(name_pos, path, "\"24x7\" is built in (UTC, always in hours); choose another name");
                continue;
            }
            if let Err(e) = Id::new(name) {
                r.error(name_pos, path, format!("calendar name {e}"));
                continue;
            }
            defined_calendars.insert(name.to_string());
            if let Some(cal) = read_calendar(r, name, value, &path) {
                calendars.insert(name.to_string(), cal);
            }
        }
    }
    Calendars { all: calendars, defined: defined_calendars }
}

fn read_calendar(r: &mut Reader<'_>, name: &str, v: &Value<'_>, path: &str) -> Option<Calendar> {
    let f = r.fields(v, path, &["timezone", "hours", "holidays"])?;
    let tz = r.req_string(&f, "timezone").and_then(|s| match parse_timezone(&s.value) {
        Ok(tz) => Some(tz),
        Err(e) => {
            r.error(s.pos, f.key_path("timezone"), e);
            None
        }
    });
    let mut weekly: [Vec<(DayRange, usize, String)>; 7] = Default::default();
    let mut hours_text = Vec::new();
    let mut hours_ok = true;
    match f.get("hours") {
        None => {
            r.error(f.pos, f.key_path("hours"), "is required but missing; e.g. hours = [\"mon-fri 08:00-18:00\"]");
            hours_ok = false;
        }
        Some(_) => {
            for (i, h) in r.opt_string_list(&f, "hours").unwrap_or_default().into_iter().enumerate() {
                match parse_hours(&h.value) {
                    Ok((days, ranges)) => {
                        for d in days {
                            for range in &ranges {
                                weekly[d].push((*range, h.pos, h.value.clone()));
                            }
                        }
                        hours_text.push(h.value);
                    }
                    Err(e) => {
                        hours_ok = false;
                        r.error(h.pos, index(&f.key_path("hours"), i), e);
                    }
                }
            }
        }
    }
    let mut clean: [Vec<DayRange>; 7] = Default::default();
    for (day, ranges) in weekly.iter_mut().enumerate() {
        ranges.sort_by_key(|(range, _, _)| *range);
        for pair in ranges.windows(2) {
            let ((a, _, a_text), (b, b_pos, b_text)) = (&pair[0], &pair[1]);
            if b.start < a.end {
                hours_ok = false;
                r.error(
                    *b_pos,
                    f.key_path("hours"),
                    format!(
                        "\"{b_text}\" overlaps \"{a_text}\" on {} ({b} and {a}); make the ranges disjoint",
                        crate::calendar::WEEKDAYS[day]
                    ),
                );
            }
        }
        clean[day] = ranges.iter().map(|(range, _, _)| *range).collect();
    }
    let mut holidays = BTreeSet::new();
    for (i, h) in r.opt_string_list(&f, "holidays").unwrap_or_default().into_iter().enumerate() {
        match parse_date(&h.value) {
            Ok(d) => {
                holidays.insert(d);
            }
            Err(e) => {
                hours_ok = false;
                r.error(h.pos, index(&f.key_path("holidays"), i), e);
            }
        }
    }
    let (timezone_name, timezone) = tz?;
    hours_ok.then(|| Calendar { id: name.to_string(), timezone_name, timezone, weekly: clean, holidays, hours_text })
}
