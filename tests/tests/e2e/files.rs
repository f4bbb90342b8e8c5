//! File modes (SPEC §15): the collector's data_dir and the agent's spool are 0700 with
//! every file in them 0600, however loose the umask they were started under.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use probity_tests::{Agent, Collector};

/// Every path under `root` (itself included) whose mode is not 0700 (directories) or 0600 (files).
fn loose(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(root).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
    if !meta.file_type().is_symlink() && mode != wanted {
        out.push(format!("{} is {mode:04o}", root.display()));
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(root).unwrap() {
            out.extend(loose(&entry.unwrap().path()));
        }
    }
    out
}

#[test]
fn the_collector_data_dir_and_the_agent_spool_are_private() {
    let token = "probity_e2e-files-1";
    let hash: String = probity_config::token_sha256(token).iter().map(|b| format!("{b:02x}")).collect();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[[agents]]\nid = \"f-1\"\ntoken_sha256 = \"{hash}\"\n\n[[services]]\nid = \"db\"\nname = \"Database\"\n  [[services.probes]]\n  id = \"db-tcp\"\n  kind = \"tcp\"\n  target = \"{}\"\n  interval = \"1s\"\n  timeout = \"1s\"\n",
        target.local_addr().unwrap()
    );
    let mut collector = Collector::start(&config);
    let mut agent = Agent::start("f-1", token, &collector.url(""));
    agent.wait_for_log("delivered");
    let data = collector.dir().join("data");
    let spool = agent.dir.path().join("spool");
    assert!(std::fs::read_dir(&data).unwrap().count() > 0 && std::fs::read_dir(&spool).unwrap().count() > 0);
    let mut wrong = loose(&data);
    wrong.extend(loose(&spool));
    assert!(wrong.is_empty(), "{wrong:#?}");
    collector.kill();
}
