//! The shipped example configs stay true as a user extends them: the quickstart's probes
//! of this host stay with the embedded agent when agents are added, and the configs the
//! Debian packages install are valid.

use probity_config::parse_collector_config;

#[test]
fn the_quickstart_keeps_its_probes_local_when_an_agent_is_added() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.toml");
    let quickstart = std::fs::read_to_string(path).unwrap();
    // What "Installing an agent" has the user append (as `new-agent lon-1` prints it).
    let added =
        format!("{quickstart}\n[[agents]]\nid = \"lon-1\"\ntoken_sha256 = \"{}\"\nlabels = {{}}\n", "ab".repeat(32));
    let config = parse_collector_config("quickstart.toml", &added).unwrap();
    let c = &config.catalogue;
    assert!(c.assignment("lon-1").is_empty(), "a new agent is assigned none of the quickstart's probes");
    for (service, probe) in c.probes() {
        let agents: Vec<&str> = probe.agents.iter().map(|a| a.as_str()).collect();
        assert_eq!(agents, ["local"], "{}/{}", service.id, probe.id);
        assert_eq!(probe.quorum, 1, "{}/{}", service.id, probe.id);
    }
    assert_eq!(c.assignment("local").len(), c.probe_count());
}

#[test]
fn the_quickstart_resolves_a_name_its_resolver_must_ask_about() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.toml");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(!text.contains("name = \"localhost\""), "the resolver answers localhost without asking its server");
}

#[test]
fn the_packaged_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("collector/dist/collector.toml")).unwrap();
    let collector = parse_collector_config("collector.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(collector.server.data_dir, std::path::Path::new("/var/lib/probity-collector"));
    let text = std::fs::read_to_string(root.join("agent/dist/agent.toml")).unwrap();
    let agent = probity_config::parse_agent_config("agent.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agent.spool_dir, std::path::Path::new("/var/lib/probity-agent"));
}
