//! Supplier attribution (SPEC §8): the part of each outage's counted time during which a
//! dependency of the service was down too, per outage and per dependency. Reports read the
//! dependencies' timelines; the arithmetic is here, with every other seconds figure.

use super::figures::{Attribution, Figures};
use super::intervals::{Interval, intersect, total};
use super::timeline::{ServiceTimeline, State};

/// Fills each outage's `attributed_to` in `figures` (its counted part, inside base,
/// against every dependency's down time; a dependency that was never down during it is
/// left out) and returns, per dependency in the order given, the total attributed to it
/// (zero included, so a report lists every dependency it checked).
pub fn attribute_downtime(figures: &mut Figures, dependencies: &[(&str, ServiceTimeline)]) -> Vec<Attribution> {
    let counted: Vec<Vec<Interval>> =
        figures.outages.iter().map(|o| intersect(&figures.base, &[(o.start_ms, o.end_ms)])).collect();
    let mut per_outage: Vec<Vec<Attribution>> = vec![Vec::new(); figures.outages.len()];
    let mut per_dependency = Vec::with_capacity(dependencies.len());
    for (dependency, timeline) in dependencies {
        let down = timeline.intervals(State::Down);
        let mut dependency_ms = 0;
        for (i, parts) in counted.iter().enumerate() {
            let ms = total(&intersect(parts, &down));
            if ms > 0 {
                per_outage[i].push(attribution(dependency, ms));
                dependency_ms += ms;
            }
        }
        per_dependency.push(attribution(dependency, dependency_ms));
    }
    for (outage, attributions) in figures.outages.iter_mut().zip(per_outage) {
        outage.attributed_to = Some(attributions);
    }
    per_dependency
}

fn attribution(service: &str, ms: i64) -> Attribution {
    Attribution { service: service.to_string(), counted_seconds: ms as f64 / 1000.0, counted_ms: ms }
}

#[cfg(test)]
mod tests {
    use probity_config::UnknownPolicy;
    use probity_config::wire::ErrorKind::{Connect, Timeout};

    use super::*;
    use crate::availability::fixtures::{HOUR, at, calendar, down, probe, service, up};
    use crate::availability::{FiguresSpec, compute, service_timeline};

    /// Office hours 09:00-17:00 UTC on Monday 2026-11-02; the timelines cover the day.
    fn office_figures(runs: Vec<crate::runs::ViewRun>, maintenance: &[Interval]) -> Figures {
        let calendar = calendar("UTC", &["mon-fri 09:00-17:00"], &[]);
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance,
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.0),
        };
        let input = service(vec![probe("shop", 1, vec![("a", runs)])], 0);
        compute(&service_timeline(&input, at(0), at(24 * 60)), &spec, at(0), at(24 * 60))
    }

    fn dependency(runs: Vec<crate::runs::ViewRun>) -> ServiceTimeline {
        service_timeline(&service(vec![probe("dep", 1, vec![("a", runs)])], 0), at(0), at(24 * 60))
    }

    #[test]
    fn only_the_counted_part_of_an_outage_is_attributed_and_only_while_the_dependency_was_down() {
        // shop down 08:00-10:00 (counted from 09:00) and 12:00-12:30; the psp down
        // 08:30-09:30 and 12:10-13:00; the dns never down.
        let mut figures = office_figures(
            vec![
                up(0, 8 * 60),
                down(8 * 60, 10 * 60, Timeout),
                up(10 * 60, 12 * 60),
                down(12 * 60, 12 * 60 + 30, Timeout),
                up(12 * 60 + 30, 24 * 60),
            ],
            &[],
        );
        let psp = dependency(vec![
            up(0, 8 * 60 + 30),
            down(8 * 60 + 30, 9 * 60 + 30, Connect),
            up(9 * 60 + 30, 12 * 60 + 10),
            down(12 * 60 + 10, 13 * 60, Connect),
            up(13 * 60, 24 * 60),
        ]);
        let dns = dependency(vec![up(0, 24 * 60)]);
        let totals = attribute_downtime(&mut figures, &[("psp", psp), ("dns", dns)]);
        // 09:00-09:30 of the first outage (08:30-09:00 is outside service hours), 12:10-12:30 of the second.
        let first = figures.outages[0].attributed_to.as_ref().unwrap();
        assert_eq!(first, &vec![Attribution { service: "psp".into(), counted_seconds: 1800.0, counted_ms: 1_800_000 }]);
        let second = figures.outages[1].attributed_to.as_ref().unwrap();
        assert_eq!(second[0].counted_ms, 20 * 60_000);
        assert_eq!(
            totals.iter().map(|a| (a.service.as_str(), a.counted_ms)).collect::<Vec<_>>(),
            vec![("psp", 50 * 60_000), ("dns", 0)]
        );
    }

    #[test]
    fn maintenance_inside_an_outage_is_never_attributed() {
        // shop and the psp both down 10:00-12:00; maintenance 10:30-11:30.
        let maintenance = [(at(10 * 60 + 30), at(11 * 60 + 30))];
        let mut figures =
            office_figures(vec![up(0, 10 * 60), down(10 * 60, 12 * 60, Timeout), up(12 * 60, 24 * 60)], &maintenance);
        let psp = dependency(vec![up(0, 10 * 60), down(10 * 60, 12 * 60, Connect), up(12 * 60, 24 * 60)]);
        let totals = attribute_downtime(&mut figures, &[("psp", psp)]);
        assert_eq!(totals[0].counted_ms, HOUR);
        assert_eq!(figures.outages[0].attributed_to.as_ref().unwrap()[0].counted_ms, figures.outages[0].counted_ms);
    }

    #[test]
    fn without_dependencies_every_outage_is_attributed_to_nothing() {
        let mut figures =
            office_figures(vec![up(0, 10 * 60), down(10 * 60, 11 * 60, Timeout), up(11 * 60, 24 * 60)], &[]);
        assert!(attribute_downtime(&mut figures, &[]).is_empty());
        assert_eq!(figures.outages[0].attributed_to, Some(Vec::new()));
    }
}
