//! Who is calling the read and write API (SPEC §12): `[[api.tokens]]` with roles and
//! scopes, plus `read_tokens_sha256` as unscoped readers. With no token of either kind
//! configured the read API is open and writes are refused. A [`Principal`] carries the
//! caller's role and what its scope lets it see, resolved once against the catalogue in
//! force; handlers ask it (`sees_agreement`, `sees_service`, `covers_services`) and answer
//! an id it does not see exactly as an unknown one.

use std::borrow::Cow;
use std::collections::BTreeSet;

use axum::http::{HeaderMap, header};
use probity_config::{ApiToken, Catalogue, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::state::AppState;

/// The caller a token identifies, with what its scope covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The `[[api.tokens]]` id; `None` for a `read_tokens_sha256` token or an open read API.
    pub id: Option<String>,
    pub role: Role,
    pub scope: Scope,
}

/// What a token sees. A scoped token sees its agreements and the services they are on,
/// plus its services and the agreements on them (SPEC §12); nothing else, not even the
/// services those depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Only { agreements: BTreeSet<String>, services: BTreeSet<String> },
}

impl Scope {
    /// The scope of one `[[api.tokens]]` entry against the catalogue in force: no lists
    /// written is unscoped.
    pub fn of(token: &ApiToken, catalogue: &Catalogue) -> Scope {
        if token.agreements.is_empty() && token.services.is_empty() {
            return Scope::All;
        }
        let mut agreements: BTreeSet<String> = token.agreements.iter().map(|a| a.to_string()).collect();
        let mut services: BTreeSet<String> = token.services.iter().map(|s| s.to_string()).collect();
        for a in &catalogue.agreements {
            if agreements.contains(a.id.as_str()) {
                services.insert(a.service.to_string());
            }
        }
        for a in &catalogue.agreements {
            if token.services.contains(&a.service) {
                agreements.insert(a.id.to_string());
            }
        }
        Scope::Only { agreements, services }
    }
}

impl Principal {
    /// The caller of an open read API (no token configured).
    pub fn anonymous_reader() -> Principal {
        Principal { id: None, role: Role::Reader, scope: Scope::All }
    }

    pub fn is_scoped(&self) -> bool {
        matches!(self.scope, Scope::Only { .. })
    }

    pub fn sees_agreement(&self, id: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Only { agreements, .. } => agreements.contains(id),
        }
    }

    pub fn sees_service(&self, id: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Only { services, .. } => services.contains(id),
        }
    }

    /// Whether every service named is in this caller's scope: what a maintenance write
    /// needs (SPEC §11, §12). An empty list is covered.
    pub fn covers_services<S: AsRef<str>>(&self, ids: &[S]) -> bool {
        ids.iter().all(|s| self.sees_service(s.as_ref()))
    }

    /// [`Principal::covers_services`] as the `403` a write outside the scope answers,
    /// naming the first service it does not cover (the caller named it, so nothing is
    /// disclosed).
    pub fn require_services<S: AsRef<str>>(&self, ids: &[S]) -> Result<(), ApiError> {
        match ids.iter().find(|s| !self.sees_service(s.as_ref())) {
            None => Ok(()),
            Some(s) => Err(ApiError::Forbidden(format!(
                "token {} is not scoped to service \"{}\"",
                self.id.as_deref().unwrap_or("(read token)"),
                crate::ingest::echo_id(s.as_ref())
            ))),
        }
    }

    /// An agreement id this caller sees, or the `404` of an unknown agreement: the same
    /// body either way, so a scope discloses nothing.
    pub fn agreement_or_404(&self, id: &str) -> Result<(), ApiError> {
        if self.sees_agreement(id) { Ok(()) } else { Err(super::unknown_agreement(id)) }
    }

    /// The catalogue as this caller may see it: its services (with their probes), its
    /// agreements, the calendars those use, the agents that run those probes, and the
    /// maintenance windows of those services (naming only those). Unscoped: the catalogue
    /// itself. Every read computes from this, so an id outside the scope is unknown to it
    /// (the same 404), a listing cannot name it, and a service's figures are the same as
    /// an unscoped caller's (its own probes, calendar and maintenance are all kept).
    pub fn scoped_catalogue<'c>(&self, catalogue: &'c Catalogue) -> Cow<'c, Catalogue> {
        let Scope::Only { agreements, services } = &self.scope else { return Cow::Borrowed(catalogue) };
        let mut c = catalogue.clone();
        c.services.retain(|s| services.contains(s.id.as_str()));
        for s in &mut c.services {
            s.depends_on.retain(|d| services.contains(d.as_str()));
        }
        c.agreements.retain(|a| agreements.contains(a.id.as_str()));
        let calendars: BTreeSet<&str> = c.agreements.iter().map(|a| a.calendar.as_str()).collect();
        c.calendars.retain(|name, _| calendars.contains(name.as_str()) || name == probity_config::calendar::ALWAYS);
        let agents: BTreeSet<&str> =
            c.services.iter().flat_map(|s| &s.probes).flat_map(|p| &p.agents).map(|a| a.as_str()).collect();
        c.agents.retain(|a| agents.contains(a.id.as_str()));
        c.maintenance.retain_mut(|m| {
            m.services.retain(|s| services.contains(s.as_str()));
            !m.services.is_empty()
        });
        Cow::Owned(c)
    }

    /// A safety net over JSON built from stored records (sealed revisions, compliance
    /// lines, maintenance windows): drops every array element that is an object naming an
    /// agreement or service outside the scope (`agreement`, `service`,
    /// `dependency_agreement`, `dependency`), such as an outage's `attributed_to` a
    /// dependency the caller does not see, and cuts every `services` list to the scope.
    pub fn scrub(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if !self.is_scoped() {
            return;
        }
        let hidden = |v: &Value| -> bool {
            let Some(m) = v.as_object() else { return false };
            let named = |key: &str| m.get(key).and_then(Value::as_str);
            named("agreement").is_some_and(|a| !self.sees_agreement(a))
                || named("dependency_agreement").is_some_and(|a| !self.sees_agreement(a))
                || named("service").is_some_and(|s| !self.sees_service(s))
                || named("dependency").is_some_and(|s| !self.sees_service(s))
        };
        match value {
            Value::Array(items) => {
                items.retain(|v| !hidden(v));
                items.iter_mut().for_each(|v| self.scrub(v));
            }
            Value::Object(map) => {
                // A record naming several services (a maintenance window) keeps the ones
                // in scope.
                if let Some(Value::Array(services)) = map.get_mut("services") {
                    services.retain(|s| s.as_str().is_none_or(|s| self.sees_service(s)));
                }
                map.values_mut().for_each(|v| self.scrub(v));
            }
            _ => {}
        }
    }

    /// As [`Principal::agreement_or_404`], for a service.
    pub fn service_or_404(&self, id: &str) -> Result<(), ApiError> {
        if self.sees_service(id) { Ok(()) } else { Err(super::unknown_service(id)) }
    }
}

/// Checks the bearer token against every configured hash (in constant time, without
/// stopping early) and that its role includes `needed`.
pub fn require(state: &AppState, headers: &HeaderMap, needed: Role) -> Result<Principal, ApiError> {
    let config = state.config();
    let api = &config.api;
    if !api.needs_token() {
        if needed == Role::Reader {
            return Ok(Principal::anonymous_reader());
        }
        return Err(ApiError::Forbidden(format!(
            "this needs a {} token; add one to [[api.tokens]] (probity-collector new-token ID --role {})",
            needed.as_str(),
            needed.as_str()
        )));
    }
    let token = bearer(headers).ok_or_else(|| {
        let kind = if needed == Role::Reader { "read" } else { needed.as_str() };
        ApiError::Unauthorized(format!("this API needs Authorization: Bearer <{kind} token>"))
    })?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found: Option<&ApiToken> = None;
    for t in &api.tokens {
        if bool::from(digest.ct_eq(&t.token_sha256)) {
            found = Some(t);
        }
    }
    let mut reader = subtle::Choice::from(0);
    for h in &api.read_tokens_sha256 {
        reader |= digest.ct_eq(h);
    }
    let principal = match found {
        Some(t) => Principal { id: Some(t.id.to_string()), role: t.role, scope: Scope::of(t, &config.catalogue) },
        None if bool::from(reader) => Principal { id: None, role: Role::Reader, scope: Scope::All },
        None => return Err(ApiError::Unauthorized("unknown token".into())),
    };
    if principal.role < needed {
        return Err(ApiError::Forbidden(format!(
            "token {} has role {}; this needs {}",
            principal.id.as_deref().unwrap_or("(read token)"),
            principal.role.as_str(),
            needed.as_str()
        )));
    }
    Ok(principal)
}

/// `/metrics` (SPEC §12): open with no token configured or `[api] metrics_open = true`;
/// otherwise an unscoped token (a scoped one would learn every agent, probe and service).
pub fn require_metrics(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config().api.metrics_open {
        return Ok(());
    }
    let principal = require(state, headers, Role::Reader)?;
    if principal.is_scoped() {
        return Err(ApiError::Forbidden(format!(
            "token {} is scoped; /metrics needs an unscoped token (or [api] metrics_open = true)",
            principal.id.as_deref().unwrap_or("(read token)")
        )));
    }
    Ok(())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let text = r#"
[embedded_agent]
enabled = true

[[services]]
id = "shop"
name = "Shop"
owner = "ops"
  [[services.probes]]
  id = "web"
  kind = "tcp"
  target = "127.0.0.1:9"
  interval = "10s"
  timeout = "5s"

[[services]]
id = "psp"
name = "PSP"
owner = "acme"
depends_on = ["shop"]
  [[services.probes]]
  id = "psp-api"
  kind = "tcp"
  target = "127.0.0.1:9"
  interval = "10s"
  timeout = "5s"

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
availability = 99.9

[[agreements]]
id = "psp-uc"
kind = "uc"
service = "psp"
availability = 99.5

[[agreements]]
id = "psp-ola"
kind = "ola"
service = "psp"
availability = 99.0
"#;
        probity_config::parse_collector_config("t.toml", text).unwrap().catalogue
    }

    fn token(agreements: &[&str], services: &[&str]) -> ApiToken {
        ApiToken {
            id: probity_config::Id::new("t").unwrap(),
            token_sha256: [0; 32],
            role: Role::Operator,
            agreements: agreements.iter().map(|a| probity_config::Id::new(a).unwrap()).collect(),
            services: services.iter().map(|s| probity_config::Id::new(s).unwrap()).collect(),
        }
    }

    fn principal(agreements: &[&str], services: &[&str]) -> Principal {
        Principal {
            id: Some("t".into()),
            role: Role::Operator,
            scope: Scope::of(&token(agreements, services), &catalogue()),
        }
    }

    #[test]
    fn an_agreement_scope_sees_its_agreement_and_its_service_only() {
        let p = principal(&["psp-uc"], &[]);
        assert!(p.sees_agreement("psp-uc") && p.sees_service("psp"));
        assert!(!p.sees_agreement("psp-ola"), "another agreement on the same service stays hidden");
        assert!(!p.sees_agreement("shop-sla") && !p.sees_service("shop"));
        assert!(p.covers_services(&["psp"]) && !p.covers_services(&["psp", "shop"]));
        assert_eq!(p.require_services(&["shop"]).unwrap_err().to_string(), "token t is not scoped to service \"shop\"");
    }

    #[test]
    fn a_service_scope_sees_the_service_and_every_agreement_on_it_but_not_its_dependencies() {
        let p = principal(&[], &["shop"]);
        assert!(p.sees_service("shop") && p.sees_agreement("shop-sla"));
        assert!(!p.sees_service("psp") && !p.sees_agreement("psp-uc"));
        let q = principal(&[], &["psp"]);
        assert!(q.sees_agreement("psp-uc") && q.sees_agreement("psp-ola") && !q.sees_agreement("shop-sla"));
        assert!(!q.sees_service("shop"), "psp depends on shop; a psp scope does not see it");
    }

    #[test]
    fn no_lists_is_unscoped_and_covers_everything() {
        let p = principal(&[], &[]);
        assert!(!p.is_scoped());
        assert!(p.sees_agreement("anything") && p.covers_services(&["shop", "psp", "other"]));
        assert!(Principal::anonymous_reader().covers_services::<&str>(&[]));
    }

    #[test]
    fn scrub_drops_what_names_a_hidden_agreement_or_service_from_stored_json() {
        let p = principal(&["psp-uc"], &[]);
        let mut stored = serde_json::json!({
            "agreement": "psp-uc",
            "service": "psp",
            "attributed_downtime": [{"service": "shop", "counted_seconds": 60.0}, {"service": "psp", "counted_seconds": 1.0}],
            "outages": [{"start": "x", "attributed_to": [{"service": "shop", "counted_seconds": 60.0}]}],
            "agreements": [{"agreement": "shop-sla"}, {"agreement": "psp-uc"}],
            "gaps": [{"agreement": "psp-uc", "dependency_agreement": "shop-sla", "dependency": "shop"}],
            "maintenance_windows": [{"id": "chg-1", "services": ["psp", "shop"]}],
        });
        p.scrub(&mut stored);
        let text = stored.to_string();
        assert!(!text.contains("shop"), "{text}");
        assert_eq!(stored["attributed_downtime"].as_array().unwrap().len(), 1);
        assert_eq!(stored["agreements"][0]["agreement"], "psp-uc");
        assert_eq!(stored["maintenance_windows"][0]["services"], serde_json::json!(["psp"]));
        let mut unscoped = serde_json::json!([{"service": "shop"}]);
        principal(&[], &[]).scrub(&mut unscoped);
        assert_eq!(unscoped, serde_json::json!([{"service": "shop"}]));
    }

    #[test]
    fn the_scoped_catalogue_keeps_what_the_scope_needs_and_nothing_else() {
        let c = catalogue();
        let p = principal(&["psp-uc"], &[]);
        let seen = p.scoped_catalogue(&c);
        let ids = |v: Vec<&str>| v.join(",");
        assert_eq!(ids(seen.services.iter().map(|s| s.id.as_str()).collect()), "psp");
        assert_eq!(ids(seen.agreements.iter().map(|a| a.id.as_str()).collect()), "psp-uc");
        assert!(seen.services[0].depends_on.is_empty(), "psp depends on nothing the scope sees");
        assert_eq!(seen.service("psp").unwrap().probes.len(), c.service("psp").unwrap().probes.len());
        assert!(matches!(principal(&[], &[]).scoped_catalogue(&c), Cow::Borrowed(_)));
    }

    #[test]
    fn a_hidden_id_answers_the_same_404_as_an_unknown_one() {
        let p = principal(&["psp-uc"], &[]);
        let hidden = p.agreement_or_404("shop-sla").unwrap_err();
        let unknown = super::super::unknown_agreement("shop-sla");
        assert_eq!((hidden.to_string(), hidden.status()), (unknown.to_string(), unknown.status()));
        assert_eq!(p.service_or_404("shop").unwrap_err().to_string(), "unknown service \"shop\"");
    }
}
