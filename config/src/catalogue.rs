//! The validated collector configuration and the service catalogue model: agents,
//! calendars, maintenance, services with probes, agreements. Every reference in it
//! has been resolved, so code after validation never re-checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;

use crate::calendar::{ALWAYS, Calendar};
use crate::id::Id;
use crate::probe::ProbeSpec;

/// A sha256 digest of a bearer token.
pub type TokenHash = [u8; 32];

/// Everything `probity-collector.toml` says.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    pub server: ServerConfig,
    pub api: ApiConfig,
    pub embedded_agent: EmbeddedAgent,
    pub evidence: EvidenceConfig,
    pub catalogue: Catalogue,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// sled database and the evidence signing key (relative paths are from the working directory).
    pub data_dir: PathBuf,
    pub raw_retention: Duration,
    pub tls: Option<TlsFiles>,
    /// Connections served at once; more wait in the kernel's backlog (SPEC §15).
    pub max_connections: usize,
    /// An agent whose |clock offset| is above this is not `clock_ok` (SPEC §15).
    pub max_clock_offset: Duration,
    /// Below this much free space on data_dir's filesystem, ingest is suspended (503)
    /// until space is back (SPEC §15), so the database never meets a full disk.
    pub min_free_disk: u64,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Unscoped reader tokens (SPEC §8); with these and `tokens` both empty the read API is
    /// open to whoever reaches `listen`.
    pub read_tokens_sha256: Vec<TokenHash>,
    /// The longest period a read endpoint computes; longer is a 400 naming it (SPEC §8).
    pub max_period: Duration,
    /// `[[api.tokens]]` (SPEC §12).
    pub tokens: Vec<ApiToken>,
    /// `/metrics` open to anyone even with tokens configured (SPEC §12); default false.
    pub metrics_open: bool,
}

/// `[api] max_period` when not set.
pub const DEFAULT_MAX_PERIOD: Duration = Duration::from_secs(400 * 86_400);

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            read_tokens_sha256: Vec::new(),
            tokens: Vec::new(),
            max_period: DEFAULT_MAX_PERIOD,
            metrics_open: false,
        }
    }
}

impl ApiConfig {
    /// Whether any token is configured, so that every read endpoint needs one (SPEC §12).
    pub fn needs_token(&self) -> bool {
        !self.read_tokens_sha256.is_empty() || !self.tokens.is_empty()
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// Shown as `by` / `declared_by` and in logs.
    pub id: Id,
    pub token_sha256: TokenHash,
    pub role: Role,
    /// Scope lists as written (empty: unscoped), validated references; the collector's
    /// `api::auth::Scope` resolves what they let a token see.
    pub agreements: Vec<Id>,
    pub services: Vec<Id>,
}

/// What a token may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The read API.
    Reader,
    /// Reader plus maintenance writes.
    Operator,
    /// Operator plus restating closed periods.
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Manager => "manager",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "reader" => Some(Role::Reader),
            "operator" => Some(Role::Operator),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EmbeddedAgent {
    pub enabled: bool,
    pub id: Id,
}

#[derive(Clone, Debug, Default)]
pub struct EvidenceConfig {
    /// Ed25519 signing key; default: generated in `data_dir` on first start.
    pub signing_key: Option<PathBuf>,
}

/// The service catalogue: what is measured, where from, and against which promises.
#[derive(Clone, Debug)]
pub struct Catalogue {
    pub agents: Vec<Agent>,
    /// By name, including the built-in `24x7`.
    pub calendars: BTreeMap<String, Calendar>,
    pub maintenance: Vec<Maintenance>,
    pub services: Vec<Service>,
    pub agreements: Vec<Agreement>,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub id: Id,
    /// None only for the embedded agent, whose token the collector makes at start.
    pub token_sha256: Option<TokenHash>,
    pub labels: BTreeMap<String, String>,
    pub embedded: bool,
}

#[derive(Clone, Debug)]
pub struct Maintenance {
    pub id: Id,
    pub services: Vec<Id>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub id: Id,
    pub name: String,
    pub owner: String,
    pub depends_on: Vec<Id>,
    /// Down runs shorter than this count as up.
    pub min_outage: Duration,
    pub probes: Vec<Probe>,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub id: Id,
    pub interval: Duration,
    /// Never longer than `interval`.
    pub timeout: Duration,
    /// The agents that run it; never empty.
    pub agents: Vec<Id>,
    /// In `1..=agents.len()`.
    pub quorum: usize,
    pub spec: ProbeSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgreementKind {
    Sla,
    Ola,
    Uc,
}

impl AgreementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementKind::Sla => "sla",
            AgreementKind::Ola => "ola",
            AgreementKind::Uc => "uc",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Week,
    Month,
    Quarter,
    Year,
}

impl PeriodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Year => "year",
        }
    }
}

/// How unmonitored time counts in an agreement's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    Exclude,
    Up,
    Down,
}

impl UnknownPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownPolicy::Exclude => "exclude",
            UnknownPolicy::Up => "up",
            UnknownPolicy::Down => "down",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTarget {
    /// In (0, 100).
    pub percentile: f64,
    pub max: Duration,
}

#[derive(Clone, Debug)]
pub struct Agreement {
    pub id: Id,
    pub kind: AgreementKind,
    pub service: Id,
    pub counterparty: String,
    /// A key of `Catalogue::calendars`.
    pub calendar: String,
    pub period: PeriodKind,
    /// Percent of agreed service time, in (0, 100].
    pub availability: f64,
    pub latency: Option<LatencyTarget>,
    pub unknown: UnknownPolicy,
    /// Percent of base that must be monitored for a verdict (SPEC §7), in (0, 100].
    pub min_coverage: f64,
    /// How long after its end a period settles before it is closed and sealed (SPEC §10).
    pub settle: Duration,
    /// SPEC §11: when set, only the part of a maintenance window from max(start,
    /// declared_at + notice) counts as maintenance for this agreement. `None`: windows
    /// count whole.
    pub maintenance_notice: Option<Duration>,
}

/// `min_coverage` when an agreement does not set it.
pub const DEFAULT_MIN_COVERAGE: f64 = 90.0;
/// The longest `maintenance_notice` an agreement takes.
pub const MAX_MAINTENANCE_NOTICE: Duration = Duration::from_secs(366 * 86_400);
/// `settle` when an agreement does not set it.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(24 * 3600);

impl Catalogue {
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id.as_str() == id)
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id.as_str() == id)
    }

    pub fn agreement(&self, id: &str) -> Option<&Agreement> {
        self.agreements.iter().find(|a| a.id.as_str() == id)
    }

    pub fn calendar(&self, name: &str) -> Option<&Calendar> {
        self.calendars.get(name)
    }

    /// A probe and the service it belongs to.
    pub fn probe(&self, id: &str) -> Option<(&Service, &Probe)> {
        self.services.iter().find_map(|s| s.probes.iter().find(|p| p.id.as_str() == id).map(|p| (s, p)))
    }

    pub fn probes(&self) -> impl Iterator<Item = (&Service, &Probe)> {
        self.services.iter().flat_map(|s| s.probes.iter().map(move |p| (s, p)))
    }

    /// The probes an agent must run, in catalogue order.
    pub fn assignment(&self, agent: &str) -> Vec<&Probe> {
        self.probes().filter(|(_, p)| p.agents.iter().any(|a| a.as_str() == agent)).map(|(_, p)| p).collect()
    }

    /// Maintenance windows that cover a service.
    pub fn maintenance_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Maintenance> + 'a {
        self.maintenance.iter().filter(move |m| m.services.iter().any(|s| s.as_str() == service))
    }

    /// Agreements on a service.
    pub fn agreements_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Agreement> + 'a {
        self.agreements.iter().filter(move |a| a.service.as_str() == service)
    }

    /// Every service `service` depends on, directly or further down, nearest first.
    pub fn dependencies_transitive(&self, service: &str) -> Vec<&Service> {
        let mut out: Vec<&Service> = Vec::new();
        let mut queue: Vec<&str> = vec![service];
        while let Some(current) = queue.pop() {
            let Some(s) = self.service(current) else { continue };
            for dep in &s.depends_on {
                if dep.as_str() != service
                    && !out.iter().any(|o| o.id == *dep)
                    && let Some(d) = self.service(dep.as_str())
                {
                    out.push(d);
                    queue.insert(0, d.id.as_str());
                }
            }
        }
        out
    }

    pub fn probe_count(&self) -> usize {
        self.services.iter().map(|s| s.probes.len()).sum()
    }

    /// Calendars defined in the file (without the built-in `24x7`).
    pub fn defined_calendars(&self) -> impl Iterator<Item = &Calendar> {
        self.calendars.values().filter(|c| c.id != ALWAYS)
    }
}
