//! Reading `probity-collector.toml`: the raw stage walks the TOML tree (reader.rs),
//! then cross-references are resolved and every rule is checked, so that one run
//! reports every problem and the result is a `CollectorConfig` that cannot be wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::calendar::{ALWAYS, Calendar, DayRange, parse_date, parse_hours, parse_timezone};
use crate::catalogue::*;
use crate::diag::{ConfigErrors, Diagnostics};
use crate::id::Id;
use crate::probe::*;
use crate::reader::{At, Fields, Reader, Value, index, join};
use crate::units::format_duration;

const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

const COMMON_PROBE_KEYS: [&str; 6] = ["id", "kind", "interval", "timeout", "agents", "quorum"];
const HTTP_KEYS: [&str; 8] =
    ["url", "method", "headers", "body", "expect_status", "body_contains", "follow_redirects", "tls_verify"];
const TCP_KEYS: [&str; 1] = ["target"];
const DNS_KEYS: [&str; 4] = ["name", "record", "server", "expect"];
const TLS_KEYS: [&str; 3] = ["target", "server_name", "min_days_valid"];
const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// Parses and validates a collector config; `file` names it in error messages.
pub fn parse_collector_config(file: &str, text: &str) -> Result<CollectorConfig, ConfigErrors> {
    let mut r = Reader { diags: Diagnostics::new(text) };
    let Some(root) = crate::parse_document(&mut r, text) else {
        return Err(r.diags.finish(file).unwrap_err());
    };
    let config = read_collector(&mut r, &root);
    r.diags.finish(file)?;
    Ok(config.expect("a config with no diagnostics is complete"))
}

/// Probe fields as read, with positions kept for the cross-reference pass.
struct RawProbe {
    path: String,
    id: Option<At<Id>>,
    interval: Duration,
    timeout: Option<At<Duration>>,
    agents: Option<Vec<At<String>>>,
    agents_pos: usize,
    quorum: Option<At<i64>>,
    spec: Option<ProbeSpec>,
}

struct RawService {
    path: String,
    id: Option<At<Id>>,
    name: String,
    owner: String,
    depends_on: Vec<At<String>>,
    min_outage: Duration,
    probes: Vec<RawProbe>,
}

struct RawAgreement {
    path: String,
    id: Option<At<Id>>,
    kind: Option<AgreementKind>,
    service: Option<At<String>>,
    counterparty: String,
    calendar: Option<At<String>>,
    period: Option<PeriodKind>,
    availability: Option<f64>,
    latency: Option<Option<LatencyTarget>>,
    unknown: Option<UnknownPolicy>,
}

fn read_collector(r: &mut Reader<'_>, root: &Value<'_>) -> Option<CollectorConfig> {
    let top = r.fields(
        root,
        "",
        &[
            "server",
            "api",
            "embedded_agent",
            "evidence",
            "agents",
            "calendars",
            "maintenance",
            "services",
            "agreements",
        ],
    )?;

    let server = read_server(r, top.get("server"));
    let api = read_api(r, top.get("api"));
    let embedded = read_embedded(r, top.get("embedded_agent"));
    let evidence = read_evidence(r, top.get("evidence"));

    // Agents.
    let mut agents: Vec<Agent> = Vec::new();
    let mut agent_pos: HashMap<String, usize> = HashMap::new();
    for (i, item) in array_of_tables(r, &top, "agents") {
        let path = index("agents", i);
        let Some(f) = r.fields(item, &path, &["id", "token_sha256", "labels"]) else { continue };
        let id = read_id(r, &f, "id");
        let token = r.req_string(&f, "token_sha256").and_then(|t| token_hash(r, &f.key_path("token_sha256"), t));
        let mut labels = BTreeMap::new();
        if let Some(v) = f.get("labels")
            && let Some(map) = r.open_map(v, &f.key_path("labels"))
        {
            for (k, _, v) in map.entries() {
                if let Some(s) = r.string(v, &join(&map.path, k)) {
                    labels.insert(k.to_string(), s.value);
                }
            }
        }
        // An agent whose token is wrong is still an agent: references to it must not cascade
        // into "unknown agent" errors (the file is refused anyway).
        if let Some(id) = id {
            if let Some(first) = agent_pos.get(id.value.as_str()) {
                let line = r.diags.line_of(*first);
                r.error(
                    id.pos,
                    f.key_path("id"),
                    format!("duplicate agent id \"{}\" (first defined on line {line})", id.value),
                );
                continue;
            }
            agent_pos.insert(id.value.to_string(), id.pos);
            agents.push(Agent { id: id.value, token_sha256: token, labels, embedded: false });
        }
    }
    // Duplicate tokens would make agents indistinguishable.
    {
        let mut seen: HashMap<TokenHash, &Id> = HashMap::new();
        let mut dupes = Vec::new();
        for a in &agents {
            if let Some(h) = a.token_sha256
                && let Some(other) = seen.insert(h, &a.id)
            {
                dupes.push((a.id.clone(), other.clone()));
            }
        }
        for (a, other) in dupes {
            let pos = agent_pos[a.as_str()];
            r.error(
                pos,
                "agents",
                format!("agent \"{a}\" has the same token_sha256 as agent \"{other}\"; give each agent its own token"),
            );
        }
    }
    if let Some(embedded) = &embedded
        && embedded.enabled
    {
        if let Some(pos) = agent_pos.get(embedded.id.as_str()) {
            r.error(
                *pos,
                "embedded_agent.id",
                format!("\"{}\" is also an [[agents]] id; give the embedded agent its own id", embedded.id),
            );
        } else {
            agents.push(Agent { id: embedded.id.clone(), token_sha256: None, labels: BTreeMap::new(), embedded: true });
        }
    }

    // Calendars.
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

    // Services and their probes.
    let mut services: Vec<RawService> = Vec::new();
    for (i, item) in array_of_tables(r, &top, "services") {
        let path = index("services", i);
        if let Some(s) = read_service(r, item, &path) {
            services.push(s);
        }
    }

    // Maintenance.
    let mut maintenance: Vec<(Maintenance, usize, Vec<At<String>>, String)> = Vec::new();
    for (i, item) in array_of_tables(r, &top, "maintenance") {
        let path = index("maintenance", i);
        let Some(f) = r.fields(item, &path, &["id", "services", "start", "end", "reason"]) else { continue };
        let id = read_id(r, &f, "id");
        let svcs = match f.get("services") {
            Some(_) => r.opt_string_list(&f, "services"),
            None => {
                r.error(f.pos, f.key_path("services"), "is required but missing; list the services this window covers");
                None
            }
        };
        let start = r.required(&f, "start").and_then(|v| r.instant(v, &f.key_path("start")));
        let end = r.required(&f, "end").and_then(|v| r.instant(v, &f.key_path("end")));
        let reason = r.opt_string(&f, "reason").map(|s| s.value).unwrap_or_default();
        if let (Some(start), Some(end)) = (&start, &end)
            && end.value <= start.value
        {
            r.error(end.pos, f.key_path("end"), format!("{} is not after start {}", end.value, start.value));
            continue;
        }
        if let (Some(id), Some(svcs), Some(start), Some(end)) = (id, svcs, start, end) {
            if svcs.is_empty() {
                r.error(f.pos, f.key_path("services"), "is empty; list the services this window covers");
            }
            maintenance.push((
                Maintenance { id: id.value, services: Vec::new(), start: start.value, end: end.value, reason },
                id.pos,
                svcs,
                f.key_path("services"),
            ));
        }
    }

    // Agreements.
    let mut agreements: Vec<RawAgreement> = Vec::new();
    for (i, item) in array_of_tables(r, &top, "agreements") {
        let path = index("agreements", i);
        if let Some(a) = read_agreement(r, item, &path) {
            agreements.push(a);
        }
    }

    // ---- cross references ----
    let all_agent_ids: Vec<Id> = agents.iter().map(|a| a.id.clone()).collect();
    let mut service_ids: HashMap<String, usize> = HashMap::new();
    let mut probe_ids: HashMap<String, String> = HashMap::new();
    for s in &services {
        if let Some(id) = &s.id
            && service_ids.insert(id.value.to_string(), id.pos).is_some()
        {
            r.error(id.pos, format!("{}.id", s.path), format!("duplicate service id \"{}\"", id.value));
        }
        for p in &s.probes {
            if let Some(id) = &p.id
                && let Some(other) = probe_ids.insert(id.value.to_string(), p.path.clone())
            {
                r.error(
                    id.pos,
                    format!("{}.id", p.path),
                    format!(
                        "duplicate probe id \"{}\" (also at {other}); probe ids are unique across the whole catalogue",
                        id.value
                    ),
                );
            }
        }
    }

    let mut final_services = Vec::new();
    for s in services {
        for dep in &s.depends_on {
            if !service_ids.contains_key(&dep.value) {
                r.error(dep.pos, format!("{}.depends_on", s.path), format!("unknown service \"{}\"", dep.value));
            } else if s.id.as_ref().is_some_and(|id| id.value.as_str() == dep.value) {
                r.error(
                    dep.pos,
                    format!("{}.depends_on", s.path),
                    format!("service \"{}\" depends on itself", dep.value),
                );
            }
        }
        let mut probes = Vec::new();
        for p in s.probes {
            if let Some(probe) = resolve_probe(r, p, &all_agent_ids, &agent_pos) {
                probes.push(probe);
            }
        }
        if let Some(id) = s.id {
            final_services.push(Service {
                id: id.value,
                name: s.name,
                owner: s.owner,
                depends_on: s.depends_on.iter().filter_map(|d| Id::new(&d.value).ok()).collect(),
                min_outage: s.min_outage,
                probes,
            });
        }
    }
    check_dependency_cycles(r, &final_services, &service_ids);

    let mut final_maintenance = Vec::new();
    let mut maintenance_ids: HashSet<String> = HashSet::new();
    for (mut m, id_pos, svcs, path) in maintenance {
        if !maintenance_ids.insert(m.id.to_string()) {
            r.error(id_pos, path.replace(".services", ".id"), format!("duplicate maintenance id \"{}\"", m.id));
        }
        for s in svcs {
            if service_ids.contains_key(&s.value) {
                m.services.push(Id::new(&s.value).expect("service ids are valid"));
            } else {
                r.error(s.pos, path.clone(), format!("unknown service \"{}\"", s.value));
            }
        }
        final_maintenance.push(m);
    }

    let mut final_agreements = Vec::new();
    let mut agreement_ids: HashSet<String> = HashSet::new();
    for a in agreements {
        if let Some(id) = &a.id
            && !agreement_ids.insert(id.value.to_string())
        {
            r.error(id.pos, format!("{}.id", a.path), format!("duplicate agreement id \"{}\"", id.value));
        }
        if let Some(s) = &a.service
            && !service_ids.contains_key(&s.value)
        {
            r.error(s.pos, format!("{}.service", a.path), format!("unknown service \"{}\"", s.value));
        }
        if let Some(c) = &a.calendar
            && !calendars.contains_key(&c.value)
            && !defined_calendars.contains(&c.value)
        {
            let known: Vec<&str> = calendars.keys().map(String::as_str).collect();
            r.error(
                c.pos,
                format!("{}.calendar", a.path),
                format!("unknown calendar \"{}\"; defined: {}", c.value, known.join(", ")),
            );
        }
        if let (Some(id), Some(kind), Some(service), Some(period), Some(availability), Some(latency), Some(unknown)) =
            (a.id, a.kind, a.service, a.period, a.availability, a.latency, a.unknown)
        {
            let calendar = a.calendar.map(|c| c.value).unwrap_or_else(|| ALWAYS.to_string());
            let Ok(service) = Id::new(&service.value) else { continue };
            final_agreements.push(Agreement {
                id: id.value,
                kind,
                service,
                counterparty: a.counterparty,
                calendar,
                period,
                availability,
                latency,
                unknown,
            });
        }
    }

    if !r.diags.is_empty() {
        return None;
    }
    Some(CollectorConfig {
        server: server?,
        api: api?,
        embedded_agent: embedded?,
        evidence: evidence?,
        catalogue: Catalogue {
            agents,
            calendars,
            maintenance: final_maintenance,
            services: final_services,
            agreements: final_agreements,
        },
    })
}

/// Each table of an `[[array]]`; anything else under that key is a type error.
fn array_of_tables<'a, 'i>(r: &mut Reader<'_>, f: &Fields<'a, 'i>, key: &str) -> Vec<(usize, &'a Value<'i>)> {
    let Some(v) = f.get(key) else { return Vec::new() };
    let Some(items) = r.array(v, &f.key_path(key)) else { return Vec::new() };
    items.iter().enumerate().collect()
}

fn read_id(r: &mut Reader<'_>, f: &Fields<'_, '_>, key: &str) -> Option<At<Id>> {
    let s = r.req_string(f, key)?;
    match Id::new(&s.value) {
        Ok(id) => Some(At { value: id, pos: s.pos }),
        Err(e) => {
            r.error(s.pos, f.key_path(key), e);
            None
        }
    }
}

fn token_hash(r: &mut Reader<'_>, path: &str, s: At<String>) -> Option<TokenHash> {
    let text = s.value.trim();
    let mut out = [0u8; 32];
    if text.len() == 64 && hex::decode_to_slice(text, &mut out).is_ok() {
        return Some(out);
    }
    let hint = if text.starts_with(crate::TOKEN_PREFIX) {
        "; this looks like the token itself: store its sha256 (probity-collector new-agent prints both)"
    } else {
        "; it must be the sha256 of the token as 64 hex characters"
    };
    r.error(s.pos, path, format!("\"{}\" is not 64 hex characters{hint}", s.value));
    None
}

fn read_server(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<ServerConfig> {
    let mut server = ServerConfig {
        listen: DEFAULT_LISTEN.parse().expect("default listen address"),
        data_dir: PathBuf::from("data"),
        raw_retention: DEFAULT_RETENTION,
        tls: None,
    };
    let Some(v) = v else { return Some(server) };
    let f = r.fields(v, "server", &["listen", "data_dir", "raw_retention", "tls_cert", "tls_key"])?;
    let mut ok = true;
    if let Some(listen) = r.opt_string(&f, "listen") {
        match listen.value.parse::<SocketAddr>() {
            Ok(a) => server.listen = a,
            Err(_) => {
                ok = false;
                r.error(
                    listen.pos,
                    "server.listen",
                    format!(
                        "\"{}\" is not an ip:port address; write e.g. \"127.0.0.1:7878\" or \"0.0.0.0:7878\"",
                        listen.value
                    ),
                );
            }
        }
    }
    if let Some(d) = r.opt_string(&f, "data_dir") {
        if d.value.trim().is_empty() {
            ok = false;
            r.error(d.pos, "server.data_dir", "is empty; give a directory for the database");
        }
        server.data_dir = PathBuf::from(d.value);
    }
    if f.get("raw_retention").is_some() {
        match r.opt_positive_duration(&f, "raw_retention") {
            Some(d) => server.raw_retention = d.value,
            None => ok = false,
        }
    }
    let cert = r.opt_string(&f, "tls_cert");
    let key = r.opt_string(&f, "tls_key");
    match (cert, key) {
        (Some(c), Some(k)) => server.tls = Some(TlsFiles { cert: c.value.into(), key: k.value.into() }),
        (Some(c), None) => {
            ok = false;
            r.error(c.pos, "server.tls_key", "is missing; set both tls_cert and tls_key to serve HTTPS, or neither");
        }
        (None, Some(k)) => {
            ok = false;
            r.error(k.pos, "server.tls_cert", "is missing; set both tls_cert and tls_key to serve HTTPS, or neither");
        }
        (None, None) => {}
    }
    ok.then_some(server)
}

fn read_api(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<ApiConfig> {
    let Some(v) = v else { return Some(ApiConfig::default()) };
    let f = r.fields(v, "api", &["read_tokens_sha256"])?;
    let mut api = ApiConfig::default();
    let list = r.opt_string_list(&f, "read_tokens_sha256").unwrap_or_default();
    for (i, s) in list.into_iter().enumerate() {
        api.read_tokens_sha256.push(token_hash(r, &index("api.read_tokens_sha256", i), s)?);
    }
    Some(api)
}

fn read_embedded(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<EmbeddedAgent> {
    let mut e = EmbeddedAgent { enabled: false, id: Id::new("local").expect("valid") };
    let Some(v) = v else { return Some(e) };
    let f = r.fields(v, "embedded_agent", &["enabled", "id"])?;
    e.enabled = r.opt_bool(&f, "enabled").unwrap_or(false);
    if let Some(s) = r.opt_string(&f, "id") {
        match Id::new(&s.value) {
            Ok(id) => e.id = id,
            Err(msg) => {
                r.error(s.pos, "embedded_agent.id", msg);
                return None;
            }
        }
    }
    Some(e)
}

fn read_evidence(r: &mut Reader<'_>, v: Option<&Value<'_>>) -> Option<EvidenceConfig> {
    let Some(v) = v else { return Some(EvidenceConfig::default()) };
    let f = r.fields(v, "evidence", &["signing_key"])?;
    Some(EvidenceConfig { signing_key: r.opt_string(&f, "signing_key").map(|s| PathBuf::from(s.value)) })
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

fn read_service(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawService> {
    let f = r.fields(v, path, &["id", "name", "owner", "depends_on", "min_outage", "probes"])?;
    let id = read_id(r, &f, "id");
    let name = r.opt_string(&f, "name").map(|s| s.value);
    let owner = r.opt_string(&f, "owner").map(|s| s.value).unwrap_or_default();
    let depends_on = r.opt_string_list(&f, "depends_on").unwrap_or_default();
    let min_outage = r.opt_duration(&f, "min_outage").map(|d| d.value).unwrap_or(Duration::ZERO);
    let mut probes = Vec::new();
    let items = array_of_tables(r, &f, "probes");
    if items.is_empty() && f.get("probes").is_none() {
        r.error(f.pos, f.key_path("probes"), "a service needs at least one probe; add a [[services.probes]] table");
    }
    for (i, item) in items {
        if let Some(p) = read_probe(r, item, &index(&f.key_path("probes"), i)) {
            probes.push(p);
        }
    }
    let name = name.unwrap_or_else(|| id.as_ref().map(|i| i.value.to_string()).unwrap_or_default());
    Some(RawService { path: path.to_string(), id, name, owner, depends_on, min_outage, probes })
}

fn read_probe(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawProbe> {
    // The kind decides which keys are allowed, so read it before checking keys.
    let DeValue::Table(table) = v.get_ref() else {
        r.type_error(v, path, "a table");
        return None;
    };
    let kind_value = table.iter().find(|(k, _)| k.get_ref().as_ref() == "kind").map(|(_, v)| v);
    let kind = match kind_value {
        None => {
            r.error(v.span().start, join(path, "kind"), "is required but missing; use http, tcp, dns or tls");
            None
        }
        Some(k) => {
            let s = r.string(k, &join(path, "kind"))?;
            match s.value.as_str() {
                "http" | "tcp" | "dns" | "tls" => Some(s.value),
                other => {
                    r.error(
                        s.pos,
                        join(path, "kind"),
                        format!("\"{other}\" is not a probe kind; use http, tcp, dns or tls"),
                    );
                    None
                }
            }
        }
    };
    let kind_keys: &[&str] = match kind.as_deref() {
        Some("http") => &HTTP_KEYS,
        Some("tcp") => &TCP_KEYS,
        Some("dns") => &DNS_KEYS,
        Some("tls") => &TLS_KEYS,
        _ => &[],
    };
    let mut known: Vec<&str> = COMMON_PROBE_KEYS.to_vec();
    known.extend_from_slice(kind_keys);
    if kind.is_none() {
        // Without a kind we cannot say which keys are wrong; check only the shared ones.
        known.extend(HTTP_KEYS.iter().chain(&TCP_KEYS).chain(&DNS_KEYS).chain(&TLS_KEYS));
    }
    let f = r.fields(v, path, &known)?;
    let id = read_id(r, &f, "id");
    let interval = r.opt_positive_duration(&f, "interval");
    let interval = interval.map_or(DEFAULT_INTERVAL, |i| i.value);
    let timeout = r.opt_positive_duration(&f, "timeout");
    let agents = r.opt_string_list(&f, "agents");
    let agents_pos = f.get("agents").map_or(f.pos, |v| v.span().start);
    let quorum = r.opt_integer(&f, "quorum");
    let spec = match kind.as_deref() {
        Some("http") => read_http(r, &f).map(ProbeSpec::Http),
        Some("tcp") => read_target(r, &f).map(|target| ProbeSpec::Tcp(TcpSpec { target })),
        Some("dns") => read_dns(r, &f).map(ProbeSpec::Dns),
        Some("tls") => read_tls(r, &f).map(ProbeSpec::Tls),
        _ => None,
    };
    Some(RawProbe { path: path.to_string(), id, interval, timeout, agents, agents_pos, quorum, spec })
}

fn read_http(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<HttpSpec> {
    let url = r.req_string(f, "url").and_then(|u| match url::Url::parse(&u.value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Some(u.value),
        Ok(parsed) => {
            r.error(
                u.pos,
                f.key_path("url"),
                format!("\"{}\" has scheme \"{}\"; only http and https URLs can be probed", u.value, parsed.scheme()),
            );
            None
        }
        Err(e) => {
            r.error(
                u.pos,
                f.key_path("url"),
                format!("\"{}\" is not a URL ({e}); write e.g. \"https://example.com/health\"", u.value),
            );
            None
        }
    });
    let method = r.opt_string(f, "method").and_then(|m| {
        let upper = m.value.to_ascii_uppercase();
        if HTTP_METHODS.contains(&upper.as_str()) {
            Some(upper)
        } else {
            r.error(
                m.pos,
                f.key_path("method"),
                format!("\"{}\" is not a supported method; use one of {}", m.value, HTTP_METHODS.join(", ")),
            );
            None
        }
    });
    let method_ok = method.is_some() || f.get("method").is_none();
    let mut headers = BTreeMap::new();
    let mut headers_ok = true;
    if let Some(v) = f.get("headers")
        && let Some(map) = r.open_map(v, &f.key_path("headers"))
    {
        for (k, pos, v) in map.entries() {
            let path = join(&map.path, k);
            let valid_name =
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                headers_ok = false;
                r.error(pos, path.clone(), format!("\"{k}\" is not a valid header name"));
            }
            match r.string(v, &path) {
                Some(s) if s.value.bytes().any(|b| b == b'\r' || b == b'\n') => {
                    headers_ok = false;
                    r.error(s.pos, path, "header values cannot contain line breaks");
                }
                Some(s) => {
                    headers.insert(k.to_string(), s.value);
                }
                None => headers_ok = false,
            }
        }
    }
    let body = r.opt_string(f, "body").map(|s| s.value);
    let mut expect_status = default_expect_status();
    let mut status_ok = true;
    if let Some(list) = r.opt_string_list(f, "expect_status") {
        expect_status.clear();
        for (i, s) in list.into_iter().enumerate() {
            match s.value.parse::<StatusRange>() {
                Ok(range) => expect_status.push(range),
                Err(e) => {
                    status_ok = false;
                    r.error(s.pos, index(&f.key_path("expect_status"), i), e);
                }
            }
        }
        if expect_status.is_empty() && status_ok {
            status_ok = false;
            r.error(
                f.get("expect_status").map_or(f.pos, |v| v.span().start),
                f.key_path("expect_status"),
                "is empty; list the expected statuses such as [\"200-299\"]",
            );
        }
    }
    let body_contains = r.opt_string(f, "body_contains").map(|s| s.value);
    let follow_redirects = r.opt_bool(f, "follow_redirects").unwrap_or(true);
    let tls_verify = r.opt_bool(f, "tls_verify").unwrap_or(true);
    if !(method_ok && headers_ok && status_ok) {
        return None;
    }
    Some(HttpSpec {
        url: url?,
        method: method.unwrap_or_else(|| "GET".into()),
        headers,
        body,
        expect_status,
        body_contains,
        follow_redirects,
        tls_verify,
    })
}

fn read_target(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<HostPort> {
    let t = r.req_string(f, "target")?;
    match t.value.parse::<HostPort>() {
        Ok(hp) => Some(hp),
        Err(e) => {
            r.error(t.pos, f.key_path("target"), e);
            None
        }
    }
}

fn read_dns(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<DnsSpec> {
    let name = r.req_string(f, "name").and_then(|n| {
        let trimmed = n.value.trim_end_matches('.');
        if trimmed.is_empty() || !valid_host(trimmed) || trimmed.contains(':') {
            r.error(n.pos, f.key_path("name"), format!("\"{}\" is not a DNS name", n.value));
            None
        } else {
            Some(n.value)
        }
    });
    let record = match r.opt_string(f, "record") {
        None => Some(RecordType::A),
        Some(s) => match s.value.parse::<RecordType>() {
            Ok(t) => Some(t),
            Err(e) => {
                r.error(s.pos, f.key_path("record"), e);
                None
            }
        },
    };
    let server = match r.opt_string(f, "server") {
        None => Some(None),
        Some(s) => match parse_dns_server(&s.value) {
            Ok(a) => Some(Some(a)),
            Err(e) => {
                r.error(s.pos, f.key_path("server"), e);
                None
            }
        },
    };
    let expect = r.opt_string_list(f, "expect").unwrap_or_default().into_iter().map(|s| s.value).collect();
    Some(DnsSpec { name: name?, record: record?, server: server?, expect })
}

fn read_tls(r: &mut Reader<'_>, f: &Fields<'_, '_>) -> Option<TlsSpec> {
    let target = read_target(r, f);
    let server_name = r.opt_string(f, "server_name").and_then(|s| {
        if valid_host(&s.value) {
            Some(s.value)
        } else {
            r.error(s.pos, f.key_path("server_name"), format!("\"{}\" is not a host name", s.value));
            None
        }
    });
    let server_name_ok = server_name.is_some() || f.get("server_name").is_none();
    let min_days = match r.opt_integer(f, "min_days_valid") {
        None => Some(DEFAULT_MIN_DAYS_VALID),
        Some(d) if (0..=3650).contains(&d.value) => Some(d.value as u32),
        Some(d) => {
            r.error(d.pos, f.key_path("min_days_valid"), format!("{} is outside 0..=3650 days", d.value));
            None
        }
    };
    if !server_name_ok {
        return None;
    }
    Some(TlsSpec { target: target?, server_name, min_days_valid: min_days? })
}

fn resolve_probe(
    r: &mut Reader<'_>,
    p: RawProbe,
    all_agents: &[Id],
    agent_pos: &HashMap<String, usize>,
) -> Option<Probe> {
    let timeout = match &p.timeout {
        Some(t) => {
            if t.value > p.interval {
                r.error(
                    t.pos,
                    format!("{}.timeout", p.path),
                    format!("{} is longer than interval {}", format_duration(t.value), format_duration(p.interval)),
                );
            }
            t.value
        }
        None => DEFAULT_TIMEOUT.min(p.interval),
    };
    let agents: Vec<Id> = match &p.agents {
        None => all_agents.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for a in list {
                match all_agents.iter().find(|id| id.as_str() == a.value) {
                    Some(id) if out.contains(id) => {
                        r.error(a.pos, format!("{}.agents", p.path), format!("agent \"{}\" is listed twice", a.value))
                    }
                    Some(id) => out.push(id.clone()),
                    None => {
                        let known: Vec<&str> = agent_pos.keys().map(String::as_str).collect();
                        let hint =
                            if known.is_empty() { String::from("; no [[agents]] are defined") } else { String::new() };
                        r.error(a.pos, format!("{}.agents", p.path), format!("unknown agent \"{}\"{hint}", a.value));
                    }
                }
            }
            if list.is_empty() {
                r.error(
                    p.agents_pos,
                    format!("{}.agents", p.path),
                    "is empty; list at least one agent or leave the key out for every agent",
                );
            }
            out
        }
    };
    if p.agents.is_none() && agents.is_empty() {
        r.error(
            p.agents_pos,
            format!("{}.agents", p.path),
            "no agent can run this probe: define [[agents]] or enable [embedded_agent]",
        );
    }
    let quorum = match &p.quorum {
        None => agents.len() / 2 + 1,
        Some(q) => {
            if q.value < 1 || q.value as usize > agents.len().max(1) {
                r.error(
                    q.pos,
                    format!("{}.quorum", p.path),
                    format!("{} is outside 1..={} (the number of assigned agents)", q.value, agents.len()),
                );
            }
            q.value.max(1) as usize
        }
    };
    Some(Probe { id: p.id?.value, interval: p.interval, timeout, agents, quorum, spec: p.spec? })
}

fn read_agreement(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<RawAgreement> {
    let f = r.fields(
        v,
        path,
        &["id", "kind", "service", "counterparty", "calendar", "period", "availability", "latency", "unknown"],
    )?;
    let id = read_id(r, &f, "id");
    let kind = r.req_string(&f, "kind").and_then(|s| match s.value.as_str() {
        "sla" => Some(AgreementKind::Sla),
        "ola" => Some(AgreementKind::Ola),
        "uc" => Some(AgreementKind::Uc),
        other => {
            r.error(s.pos, f.key_path("kind"), format!("\"{other}\" is not an agreement kind; use sla, ola or uc"));
            None
        }
    });
    let service = r.req_string(&f, "service");
    let counterparty = r.opt_string(&f, "counterparty").map(|s| s.value).unwrap_or_default();
    let calendar = r.opt_string(&f, "calendar");
    let period = match r.opt_string(&f, "period") {
        None => Some(PeriodKind::Month),
        Some(s) => match s.value.as_str() {
            "week" => Some(PeriodKind::Week),
            "month" => Some(PeriodKind::Month),
            "quarter" => Some(PeriodKind::Quarter),
            "year" => Some(PeriodKind::Year),
            other => {
                r.error(
                    s.pos,
                    f.key_path("period"),
                    format!("\"{other}\" is not a period; use week, month, quarter or year"),
                );
                None
            }
        },
    };
    let availability =
        r.required(&f, "availability").and_then(|v| r.number(v, &f.key_path("availability"))).and_then(|a| {
            if a.value > 0.0 && a.value <= 100.0 {
                Some(a.value)
            } else {
                r.error(
                    a.pos,
                    f.key_path("availability"),
                    format!("{} is outside (0, 100]; give a percentage such as 99.9", a.value),
                );
                None
            }
        });
    let latency = match f.get("latency") {
        None => Some(None),
        Some(v) => read_latency(r, v, &f.key_path("latency")).map(Some),
    };
    let unknown = match r.opt_string(&f, "unknown") {
        None => Some(UnknownPolicy::Exclude),
        Some(s) => match s.value.as_str() {
            "exclude" => Some(UnknownPolicy::Exclude),
            "up" => Some(UnknownPolicy::Up),
            "down" => Some(UnknownPolicy::Down),
            other => {
                r.error(
                    s.pos,
                    f.key_path("unknown"),
                    format!("\"{other}\" is not an unknown-time policy; use exclude, up or down"),
                );
                None
            }
        },
    };
    Some(RawAgreement {
        path: path.to_string(),
        id,
        kind,
        service,
        counterparty,
        calendar,
        period,
        availability,
        latency,
        unknown,
    })
}

fn read_latency(r: &mut Reader<'_>, v: &Value<'_>, path: &str) -> Option<LatencyTarget> {
    let f = r.fields(v, path, &["percentile", "max"])?;
    let percentile = r.required(&f, "percentile").and_then(|v| r.number(v, &f.key_path("percentile"))).and_then(|p| {
        if p.value > 0.0 && p.value < 100.0 {
            Some(p.value)
        } else {
            r.error(p.pos, f.key_path("percentile"), format!("{} is outside (0, 100); give e.g. 95 or 99.9", p.value));
            None
        }
    });
    let max = match f.get("max") {
        None => {
            r.error(f.pos, f.key_path("max"), "is required but missing; e.g. max = \"300ms\"");
            None
        }
        Some(_) => r.opt_positive_duration(&f, "max"),
    };
    Some(LatencyTarget { percentile: percentile?, max: max?.value })
}

fn check_dependency_cycles(r: &mut Reader<'_>, services: &[Service], service_pos: &HashMap<String, usize>) {
    // Depth-first search with colours; each cycle is reported once, at its first service.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let index_of: HashMap<&str, usize> = services.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut marks = vec![Mark::New; services.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        services: &[Service],
        index_of: &HashMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        marks[i] = Mark::Active;
        stack.push(i);
        for dep in &services[i].depends_on {
            let Some(&j) = index_of.get(dep.as_str()) else { continue };
            if j == i {
                continue; // self-dependency is reported separately
            }
            match marks[j] {
                Mark::New => visit(j, services, index_of, marks, stack, cycles),
                Mark::Active => {
                    let from = stack.iter().position(|&k| k == j).expect("active node is on the stack");
                    cycles.push(stack[from..].to_vec());
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
    }
    let mut cycles = Vec::new();
    for i in 0..services.len() {
        if marks[i] == Mark::New {
            visit(i, services, &index_of, &mut marks, &mut stack, &mut cycles);
        }
    }
    for cycle in cycles {
        let names: Vec<&str> = cycle.iter().chain(cycle.first()).map(|&i| services[i].id.as_str()).collect();
        let first = &services[cycle[0]];
        let pos = service_pos.get(first.id.as_str()).copied().unwrap_or(0);
        let path = format!("services[{}].depends_on", cycle[0]);
        r.error(pos, path, format!("dependency cycle: {}", names.join(" -> ")));
    }
}

/// Wraps a parsed document so it can be walked like any other table value.
pub(crate) fn document_value<'i>(doc: Spanned<DeTable<'i>>) -> Value<'i> {
    let span = doc.span();
    Spanned::new(span, DeValue::Table(doc.into_inner()))
}
