//! Evidence end to end: a bundle downloaded from the real collector verifies offline
//! with `probity-collector evidence verify`, and a tampered copy fails naming the file.

use std::io::{Cursor, Read, Write};
use std::process::Command;

use probity_config::time::rfc3339;
use probity_tests::{Collector, bin, write_file};

use crate::reports::{config, ingest_all};

fn rezip_with(bytes: &[u8], target: &str, edit: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let mut src = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let data = if name == target { edit(data) } else { data };
        out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn a_downloaded_bundle_verifies_offline_and_a_tampered_one_does_not() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let day = (now / 86_400_000 - 1) * 86_400_000;
    let c = Collector::start(&config(day));
    ingest_all(&c, day);
    let (from, to) = (rfc3339(day), rfc3339(day + 86_400_000));
    let reply = c.get(&format!("/api/v1/agreements/shop-sla/evidence?from={from}&to={to}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/zip"));
    let key = c.get("/api/v1/evidence/public-key").text().trim().to_string();
    assert_eq!(key.len(), 64);

    let dir = tempfile::tempdir().unwrap();
    let bundle = write_file(dir.path(), "bundle.zip", &reply.body);
    let out = Command::new(bin("probity-collector"))
        .args(["evidence", "verify"])
        .arg(&bundle)
        .args(["--public-key", &key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("VERIFIED"), "{stdout}");
    assert!(stdout.contains("results.csv: sha256 matches"), "{stdout}");

    // The bundle's results are the ones ingested: 3 agents x 348 results.
    let mut zip = zip::ZipArchive::new(Cursor::new(&reply.body)).unwrap();
    let mut results = String::new();
    zip.by_name("results.csv").unwrap().read_to_string(&mut results).unwrap();
    assert_eq!(results.lines().count(), 1 + 3 * 348);

    let tampered = rezip_with(&reply.body, "results.csv", |mut d| {
        let i = d.iter().position(|b| *b == b'f').unwrap(); // turn one "false" into "ualse"
        d[i] = b'u';
        d
    });
    let bad = write_file(dir.path(), "tampered.zip", &tampered);
    let out = Command::new(bin("probity-collector")).args(["evidence", "verify"]).arg(&bad).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED  results.csv"), "{stdout}");

    // A bundle checked against another key fails.
    let other = "11".repeat(32);
    let out = Command::new(bin("probity-collector"))
        .args(["evidence", "verify"])
        .arg(&bundle)
        .args(["--public-key", &other])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
