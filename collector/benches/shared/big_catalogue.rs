//! The large catalogue the `metrics` and `dashboard` benches share (included with
//! `#[path]`, so it is not a bench of its own): 100 services x 10 HTTP probes x 3 agents,
//! 500 agreements (5 per service on 24x7, Europe/London and America/New_York calendars,
//! 3 of 5 with latency targets), and the deterministic generator their data comes from.

pub const TOKEN_HASH: &str = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a";
pub const SERVICES: usize = 100;
pub const PROBES_PER_SERVICE: usize = 10;
pub const AGENTS: usize = 3;

pub fn config() -> String {
    let mut s = String::from("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\n");
    for i in 0..AGENTS {
        s += &format!("[[agents]]\nid = \"a{i}\"\ntoken_sha256 = \"{}\"\n\n", TOKEN_HASH.replace('d', &i.to_string()));
    }
    s += "[calendars.uk]\ntimezone = \"Europe/London\"\nhours = [\"mon-fri 08:00-18:00\"]\n\n";
    s += "[calendars.ny]\ntimezone = \"America/New_York\"\nhours = [\"mon-fri 09:00-17:00\", \"sat 10:00-14:00\"]\n\n";
    for i in 0..SERVICES {
        s += &format!("[[services]]\nid = \"service-{i}\"\nmin_outage = \"60s\"\n");
        for j in 0..PROBES_PER_SERVICE {
            s += &format!(
                "  [[services.probes]]\n  id = \"service-{i}-probe-{j}\"\n  kind = \"http\"\n  url = \"https://service-{i}.example.com/health/{j}\"\n  interval = \"30s\"\n  timeout = \"10s\"\n"
            );
        }
        for (j, (kind, cal, unknown)) in [
            ("sla", "uk", "exclude"),
            ("ola", "24x7", "up"),
            ("uc", "ny", "down"),
            ("sla", "24x7", "exclude"),
            ("ola", "uk", "exclude"),
        ]
        .iter()
        .enumerate()
        {
            let latency = if j % 2 == 0 { "latency = { percentile = 95, max = \"300ms\" }\n" } else { "" };
            s += &format!(
                "\n[[agreements]]\nid = \"service-{i}-{kind}-{j}\"\nkind = \"{kind}\"\nservice = \"service-{i}\"\ncalendar = \"{cal}\"\nperiod = \"month\"\navailability = 99.5\nunknown = \"{unknown}\"\n{latency}"
            );
        }
        s += "\n";
    }
    s
}

/// Deterministic xorshift, so every run stores the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
