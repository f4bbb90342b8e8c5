//! README's "Installing an agent", step by step, with the agent on a second host: a
//! network namespace joined to this one by a veth pair (10.213.X.1 here, 10.213.X.2 in
//! the namespace). `new-agent` mints the token, its `[[agents]]` block is added to the
//! collector config and reloaded with `kill -HUP`, the agent runs with README's config
//! (token in a 0600 file) under `ip netns exec`, and its results reach the report.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use probity_tests::{Agent, Collector, HttpTarget, wait_for};
use serde_json::Value;

/// The namespace and the veth pair, deleted when dropped (the test passing or not).
struct Netns {
    name: String,
    host_link: String,
    /// The /30's third octet: the host is 10.213.X.1, the namespace 10.213.X.2.
    x: u8,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// Makes the namespace, or says why it can't (not root, no iproute2).
    fn create() -> Result<Netns, String> {
        let pid = std::process::id();
        let name = format!("probity-e2e-{pid}");
        ip(&["netns", "add", &name])?;
        // From here on, Drop cleans up whatever was made.
        let mut ns = Netns { name, host_link: format!("pe2e-{pid}h"), x: 0 };
        ns.x = free_octet(pid)?;
        let agent_link = format!("pe2e-{pid}a");
        let (host_addr, agent_addr) = (format!("10.213.{}.1/30", ns.x), format!("10.213.{}.2/30", ns.x));
        let n = ns.name.as_str();
        ip(&["link", "add", &ns.host_link, "type", "veth", "peer", "name", &agent_link])?;
        ip(&["link", "set", &agent_link, "netns", n])?;
        ip(&["addr", "add", &host_addr, "dev", &ns.host_link])?;
        ip(&["link", "set", &ns.host_link, "up"])?;
        ip(&["-n", n, "addr", "add", &agent_addr, "dev", &agent_link])?;
        ip(&["-n", n, "link", "set", &agent_link, "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn host(&self) -> String {
        format!("10.213.{}.1", self.x)
    }
}

/// A third octet no address on this host uses yet, starting from one the pid picks (other
/// runs of this test may hold theirs).
fn free_octet(pid: u32) -> Result<u8, String> {
    let out = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().map_err(|e| e.to_string())?;
    let taken = String::from_utf8_lossy(&out.stdout).to_string();
    (0..254u32)
        .map(|i| ((pid + i) % 254 + 1) as u8)
        .find(|x| !taken.contains(&format!("10.213.{x}.")))
        .ok_or_else(|| "every 10.213.X.0/30 is in use on this host".to_string())
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace takes the veth end inside with it, and so the pair.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("cleanup: {e}");
        }
        let _ = ip(&["link", "del", &self.host_link]);
    }
}

fn service_state(c: &Collector, id: &str) -> Option<String> {
    let body = c.get("/api/v1/services").json();
    let list = body["services"].as_array()?.clone();
    list.iter().find(|s| s["id"] == id).and_then(|s| s["state"].as_str().map(str::to_string))
}

#[test]
fn an_agent_installed_as_the_readme_says_reports_from_a_second_host() {
    let ns = match Netns::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "\n\n*** SKIPPED an_agent_installed_as_the_readme_says_reports_from_a_second_host: cannot make a \
                 network namespace ({e}).\n*** It needs root and iproute2 (apt-get install -y iproute2); run \
                 `sudo cargo test -p probity-tests --test e2e install` (.ci/run installs it and runs as root).\n\n"
            );
            return;
        }
    };
    let host = ns.host();
    let from = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:00Z").to_string();

    // The collector, and the service's target, on this host's side of the link only; the
    // probe names no agents, so the one added below runs it too.
    let web = HttpTarget::start_on(200, &format!("{host}:0"));
    let config = format!(
        r#"[server]
listen = "{host}:0"
data_dir = "data"

# The catalogue refuses a probe no agent can run: par-1 is installed elsewhere and never
# reports here, so every result the report counts is lon-1's.
[[agents]]
id = "par-1"
token_sha256 = "{par}"

[[services]]
id = "web"
name = "Web"
  [[services.probes]]
  id = "web-http"
  kind = "http"
  url = "http://{web}/health"
  interval = "1s"
  timeout = "1s"
  body_contains = "ok"

[[agreements]]
id = "web-ola"
kind = "ola"
service = "web"
period = "month"
availability = 99.0
"#,
        web = web.addr,
        par = "0".repeat(64),
    );
    let mut c = Collector::start(&config);

    // Step 1: `probity-collector new-agent lon-1`, its block added, `kill -HUP`.
    let out = Command::new(probity_tests::bin("probity-collector")).args(["new-agent", "lon-1"]).output().unwrap();
    assert!(out.status.success(), "new-agent: {}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let token = printed
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap_or_else(|| panic!("no token in {printed:?}"))
        .to_string();
    assert!(token.starts_with("probity_"), "{printed}");
    let block = &printed[printed.find("[[agents]]").unwrap_or_else(|| panic!("no [[agents]] in {printed:?}"))..];
    assert!(block.contains("id = \"lon-1\"") && !block.contains(&token), "only the hash is in the block: {block}");
    std::fs::write(&c.config_path, format!("{config}\n{block}")).unwrap();
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");

    // Step 2: the token in a 0600 file and README's agent.toml, checked.
    let dir = tempfile::tempdir().unwrap();
    let token_file = probity_tests::write_file(dir.path(), "agent.token", format!("{token}\n").as_bytes());
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let agent_toml = format!(
        "id = \"lon-1\"\ncollector = \"http://{}\"\ntoken_file = \"{}\"\nspool_dir = \"{}\"\nspool_max = \"1GiB\"\n",
        c.addr,
        token_file.display(),
        dir.path().join("spool").display()
    );
    let agent_config = probity_tests::write_file(dir.path(), "agent.toml", agent_toml.as_bytes());
    let agent_bin = probity_tests::bin("probity-agent");
    let check = Command::new(&agent_bin).arg("check-config").arg(&agent_config).output().unwrap();
    assert!(check.status.success(), "check-config: {}", String::from_utf8_lossy(&check.stderr));

    // Step 3: the agent, on the other host.
    let mut command = Command::new("ip");
    command.args(["netns", "exec", &ns.name]).arg(&agent_bin);
    let agent = Agent::start_command(command, &agent_config, dir);

    // Its results arrive: it is seen, and the service is up by its word alone.
    let row = wait_for("lon-1 seen by the collector", Duration::from_secs(60), || {
        let body = c.get("/api/v1/agents").json();
        let row = body["agents"].as_array()?.iter().find(|a| a["id"] == "lon-1")?.clone();
        row["last_seen"].is_string().then_some(row)
    });
    assert_eq!(row["probes"], serde_json::json!(["web-http"]), "{row}");
    wait_for("web up", Duration::from_secs(60), || (service_state(&c, "web").as_deref() == Some("up")).then_some(()));
    assert!(web.requests.load(std::sync::atomic::Ordering::SeqCst) > 0);

    // The report over the minutes since the test began, to now: lon-1's results (the
    // first lands less than a second before the window ends) come to cover part of it.
    let report = wait_for("lon-1's results in the report", Duration::from_secs(60), || {
        let to = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let r = c.get(&format!("/api/v1/agreements/web-ola/report?from={from}&to={to}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let report: Value = r.json();
        report["coverage_percent"].as_f64().is_some_and(|p| p > 0.0).then_some(report)
    });
    assert_eq!(report["downtime_seconds"], 0.0, "{report}\n{}", agent.log());
    assert_eq!(report["availability_percent"], 100.0, "{report}");
    assert!(report["agreed_service_seconds"].as_f64().is_some_and(|s| s > 0.0), "{report}");
}
