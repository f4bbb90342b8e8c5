//! Reading `probity-collector.toml`: the raw stage walks the TOML tree (reader.rs),
//! then cross-references are resolved and every rule is checked, so that one run
//! reports every problem and the result is a `CollectorConfig` that cannot be wrong.
//! One module per table, in the order they are read: `settings` (the singleton tables),
//! `agents`, `calendars`, `services` with `probes`, `maintenance`, `agreements`.

mod agents;
mod agreements;
mod calendars;
mod maintenance;
mod probes;
mod services;
mod settings;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::catalogue::*;
use crate::diag::{ConfigErrors, Diagnostics};
use crate::id::Id;
use crate::reader::{At, Fields, Reader, Value};

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

/// Reads every table, then resolves references between them (services and their probes
/// against agents, maintenance and agreements against services and calendars).
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

    let server = settings::read_server(r, top.get("server"));
    let api = settings::read_api(r, top.get("api"));
    let embedded = settings::read_embedded(r, top.get("embedded_agent"));
    let evidence = settings::read_evidence(r, top.get("evidence"));
    let agents = agents::read_agents(r, &top, embedded.as_ref());
    let calendars = calendars::read_calendars(r, &top);
    let services = services::read_services(r, &top);
    let maintenance = maintenance::read_maintenance(r, &top);
    let agreements = agreements::read_agreements(r, &top);

    let (services, service_ids) = services::resolve_services(r, services, &agents);
    let maintenance = maintenance::resolve_maintenance(r, maintenance, &service_ids);
    let agreements = agreements::resolve_agreements(r, agreements, &service_ids, &calendars);
    let agreement_ids: std::collections::HashSet<String> = agreements.iter().map(|a| a.id.to_string()).collect();
    let api = api.map(|(mut api, scopes)| {
        settings::resolve_scopes(r, &mut api, scopes, &agreement_ids, &service_ids);
        api
    });

    if !r.diags.is_empty() {
        return None;
    }
    Some(CollectorConfig {
        server: server?,
        api: api?,
        embedded_agent: embedded?,
        evidence: evidence?,
        catalogue: Catalogue { agents: agents.list, calendars: calendars.all, maintenance, services, agreements },
    })
}
/// Each table of an `[[array]]`; anything else under that key is a type error.
pub(super) fn array_of_tables<'a, 'i>(
    r: &mut Reader<'_>,
    f: &Fields<'a, 'i>,
    key: &str,
) -> Vec<(usize, &'a Value<'i>)> {
    let Some(v) = f.get(key) else { return Vec::new() };
    let Some(items) = r.array(v, &f.key_path(key)) else { return Vec::new() };
    items.iter().enumerate().collect()
}

pub(super) fn read_id(r: &mut Reader<'_>, f: &Fields<'_, '_>, key: &str) -> Option<At<Id>> {
    let s = r.req_string(f, key)?;
    match Id::new(&s.value) {
        Ok(id) => Some(At { value: id, pos: s.pos }),
        Err(e) => {
            r.error(s.pos, f.key_path(key), e);
            None
        }
    }
}

pub(super) fn token_hash(r: &mut Reader<'_>, path: &str, s: At<String>) -> Option<TokenHash> {
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

/// Wraps a parsed document so it can be walked like any other table value.
pub(crate) fn document_value<'i>(doc: Spanned<DeTable<'i>>) -> Value<'i> {
    let span = doc.span();
    Spanned::new(span, DeValue::Table(doc.into_inner()))
}
