//! Offline verification of a bundle: the signature over `manifest.json` with the bundled
//! (or a pinned) public key, every listed file's sha256 and size (`public-key.txt`
//! included), and that no file is missing or unlisted. A closed period's bundle (the
//! manifest's `history`) must also hold `revisions.json` and `catalogue.json`, whose
//! catalogue hashes to the sha256 its version record and the signed manifest name, and
//! whose latest revision is the one the manifest and `summary.json` name. Needs nothing
//! but the zip.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::bundle::ManifestFile;
use super::export::{CATALOGUE, REVISIONS};
use super::{CONTENT_FILES, FORMAT, MANIFEST, PUBLIC_KEY, SIGNATURE};

/// The first thing that failed, naming the file it concerns.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct VerifyFailure {
    pub file: String,
    pub reason: String,
}

/// What was checked, one line each, for the person running `evidence verify`.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checks: Vec<String>,
}

fn fail(file: &str, reason: impl Into<String>) -> VerifyFailure {
    VerifyFailure { file: file.to_string(), reason: reason.into() }
}

/// Parses a public key given as 64 hex characters.
pub fn parse_public_key(hex_text: &str) -> Result<VerifyingKey, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut bytes)
        .map_err(|_| "is not 64 hex characters (an Ed25519 public key)".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not a valid Ed25519 public key".to_string())
}

/// Verifies a bundle, stopping at the first failure. `pinned`: the key the signer must
/// have used (otherwise the bundle's own `public-key.txt` is trusted for the signature).
pub fn verify_bundle<R: Read + Seek>(
    reader: R,
    pinned: Option<&VerifyingKey>,
) -> Result<VerifyReport, (VerifyReport, VerifyFailure)> {
    let mut report = VerifyReport::default();
    match verify_into(reader, pinned, &mut report) {
        Ok(()) => Ok(report),
        Err(f) => Err((report, f)),
    }
}

fn verify_into<R: Read + Seek>(
    reader: R,
    pinned: Option<&VerifyingKey>,
    report: &mut VerifyReport,
) -> Result<(), VerifyFailure> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| fail("bundle", format!("is not a readable zip: {e}")))?;
    let mut names = Vec::new();
    for i in 0..zip.len() {
        let file = zip.by_index(i).map_err(|e| fail("bundle", format!("entry {i} is unreadable: {e}")))?;
        let name = file.name().map_err(|e| fail("bundle", format!("entry {i} has a bad name: {e}")))?.to_string();
        if names.contains(&name) {
            return Err(fail(&name, "appears twice in the zip"));
        }
        names.push(name);
    }
    let mut read = |name: &str| -> Result<Vec<u8>, VerifyFailure> {
        let mut file = zip.by_name(name).map_err(|_| fail(name, "is missing from the bundle"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| fail(name, format!("cannot be read from the zip: {e}")))?;
        Ok(bytes)
    };

    let key_text = read(PUBLIC_KEY)?;
    let bundled_key = parse_public_key(&String::from_utf8_lossy(&key_text)).map_err(|e| fail(PUBLIC_KEY, e))?;
    if let Some(pinned) = pinned {
        if pinned != &bundled_key {
            return Err(fail(PUBLIC_KEY, "differs from the pinned public key: signed by another key"));
        }
        report.checks.push(format!("{PUBLIC_KEY}: matches the pinned key"));
    }
    let key = pinned.unwrap_or(&bundled_key);
    let sig_text = read(SIGNATURE)?;
    let mut sig_bytes = [0u8; 64];
    hex::decode_to_slice(String::from_utf8_lossy(&sig_text).trim(), &mut sig_bytes)
        .map_err(|_| fail(SIGNATURE, "is not 128 hex characters (an Ed25519 signature)"))?;
    let signature = Signature::from_bytes(&sig_bytes);
    let manifest_bytes = read(MANIFEST)?;
    key.verify(&manifest_bytes, &signature).map_err(|_| {
        fail(
            MANIFEST,
            format!(
                "the signature in {SIGNATURE} does not verify with key {}: the manifest or its signature was altered",
                hex::encode(key.to_bytes())
            ),
        )
    })?;
    report.checks.push(format!("{MANIFEST}: Ed25519 signature valid (key {})", hex::encode(key.to_bytes())));

    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest_bytes).map_err(|e| fail(MANIFEST, format!("is not JSON: {e}")))?;
    if manifest.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(fail(MANIFEST, format!("format is not {FORMAT}")));
    }
    let files: Vec<ManifestFile> = manifest
        .get("files")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| fail(MANIFEST, format!("files list is malformed: {e}")))?
        .ok_or_else(|| fail(MANIFEST, "lists no files"))?;

    let listed: BTreeSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for required in CONTENT_FILES.into_iter().chain([PUBLIC_KEY]) {
        if !listed.contains(required) {
            return Err(fail(required, "is not listed in the manifest"));
        }
    }
    for f in &files {
        let bytes = read(&f.name)?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != f.sha256 || bytes.len() as u64 != f.bytes {
            return Err(fail(&f.name, format!("sha256 {sha} does not match the manifest's {}", f.sha256)));
        }
        report.checks.push(format!("{}: sha256 matches ({} bytes)", f.name, f.bytes));
    }
    for name in &names {
        // The manifest cannot list itself, nor the signature over its own bytes.
        let unlistable = [MANIFEST, SIGNATURE].contains(&name.as_str());
        if !unlistable && !listed.contains(name.as_str()) {
            return Err(fail(name, "is in the bundle but not listed in the manifest"));
        }
    }
    report.checks.push(format!("bundle: {} files listed, none missing, none unlisted", files.len()));
    match manifest.get("history") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(history) => verify_history(history, &listed, &mut read, report),
    }
}

/// A closed period's history files: present and listed (their sha256 was checked with the
/// others), the catalogue version's sha256 recomputed from the catalogue it holds and equal
/// to the signed manifest's, the latest revision the one the manifest and summary name.
fn verify_history(
    history: &serde_json::Value,
    listed: &BTreeSet<&str>,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, VerifyFailure>,
    report: &mut VerifyReport,
) -> Result<(), VerifyFailure> {
    let number = |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_u64);
    let (Some(revision), Some(version), Some(sha256)) = (
        number(history, "revision"),
        number(history, "catalogue_version"),
        history.get("catalogue_sha256").and_then(serde_json::Value::as_str),
    ) else {
        return Err(fail(MANIFEST, "history lacks revision, catalogue_version or catalogue_sha256"));
    };
    for required in [REVISIONS, CATALOGUE] {
        if !listed.contains(required) {
            return Err(fail(required, "is not listed in the manifest, but a closed period's bundle must hold it"));
        }
    }
    let json = |name: &str, bytes: Vec<u8>| -> Result<serde_json::Value, VerifyFailure> {
        serde_json::from_slice(&bytes).map_err(|e| fail(name, format!("is not JSON: {e}")))
    };
    let catalogue = json(CATALOGUE, read(CATALOGUE)?)?;
    let held = catalogue.get("catalogue").ok_or_else(|| fail(CATALOGUE, "holds no catalogue"))?;
    let recomputed = probity_config::canonical::sha256_hex(&probity_config::canonical::to_bytes(held));
    if catalogue.get("sha256").and_then(serde_json::Value::as_str) != Some(recomputed.as_str()) {
        return Err(fail(
            CATALOGUE,
            format!("its catalogue hashes to {recomputed}, not to the sha256 its record gives"),
        ));
    }
    if recomputed != sha256 || number(&catalogue, "version") != Some(version) {
        return Err(fail(
            CATALOGUE,
            format!("is not catalogue version {version} (sha256 {sha256}) that the manifest names"),
        ));
    }
    report.checks.push(format!("{CATALOGUE}: catalogue version {version}, sha256 {sha256} recomputed"));
    let revisions = json(REVISIONS, read(REVISIONS)?)?;
    let latest = revisions.get("revisions").and_then(serde_json::Value::as_array).and_then(|l| l.last());
    let latest = latest.ok_or_else(|| fail(REVISIONS, "lists no revision"))?;
    if number(latest, "number") != Some(revision) || number(latest, "catalogue_version") != Some(version) {
        return Err(fail(
            REVISIONS,
            format!("its latest revision is not revision {revision} with catalogue version {version}"),
        ));
    }
    let summary = json("summary.json", read("summary.json")?)?;
    if summary.get("revision").and_then(|r| number(r, "number")) != Some(revision) {
        return Err(fail("summary.json", format!("is not revision {revision} that the manifest names")));
    }
    report.checks.push(format!("{REVISIONS}: latest revision {revision}, the one summary.json shows"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::evidence::bundle::BundleWriter;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn content(name: &str) -> Vec<u8> {
        format!("content of {name}\nline two\n").into_bytes()
    }

    /// A complete bundle, with `tweak` applied to the files before they are zipped
    /// (as someone who rebuilds the zip after editing it would do).
    fn bundle_with(key: &SigningKey) -> Vec<u8> {
        let mut w = BundleWriter::new(Cursor::new(Vec::new()));
        for name in CONTENT_FILES {
            w.add_file(name, |out| out.write_all(&content(name))).unwrap();
        }
        let mut header = serde_json::Map::new();
        header.insert("agreement".into(), "acme-psp-uc".into());
        w.finish(header, key).unwrap().into_inner()
    }

    /// Rewrites a zip entry by entry, letting `edit` change, drop or add entries.
    fn rezip(bytes: &[u8], edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>, extra: Option<(&str, &[u8])>) -> Vec<u8> {
        let mut src = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for i in 0..src.len() {
            let mut f = src.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            if let Some(data) = edit(&name, data) {
                out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
                out.write_all(&data).unwrap();
            }
        }
        if let Some((name, data)) = extra {
            out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(data).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    fn verify(bytes: &[u8], pinned: Option<&VerifyingKey>) -> Result<VerifyReport, VerifyFailure> {
        verify_bundle(Cursor::new(bytes), pinned).map_err(|(_, f)| f)
    }

    /// A closed period's bundle with `catalogue.json` and `revisions.json` as given.
    fn closed_bundle(key: &SigningKey, catalogue: Option<serde_json::Value>, sha256: &str) -> Vec<u8> {
        let mut w = BundleWriter::new(Cursor::new(Vec::new()));
        for name in CONTENT_FILES {
            let text = if name == "summary.json" { br#"{"revision": {"number": 2}}"#.to_vec() } else { content(name) };
            w.add_file(name, |out| out.write_all(&text)).unwrap();
        }
        let revisions = serde_json::json!({"revisions": [{"number": 1, "catalogue_version": 3}, {"number": 2, "catalogue_version": 3}]});
        w.add_file(REVISIONS, |out| out.write_all(revisions.to_string().as_bytes())).unwrap();
        if let Some(c) = catalogue {
            w.add_file(CATALOGUE, |out| out.write_all(c.to_string().as_bytes())).unwrap();
        }
        let mut header = serde_json::Map::new();
        header.insert(
            "history".into(),
            serde_json::json!({"state": "closed", "revision": 2, "catalogue_version": 3, "catalogue_sha256": sha256}),
        );
        w.finish(header, key).unwrap().into_inner()
    }

    #[test]
    fn a_closed_periods_bundle_needs_its_history_files_and_a_catalogue_that_hashes_to_its_version() {
        let k = key(5);
        let held = serde_json::json!({"services": [{"id": "web"}]});
        let sha = probity_config::canonical::sha256_hex(&probity_config::canonical::to_bytes(&held));
        let record = |sha: &str| serde_json::json!({"version": 3, "sha256": sha, "catalogue": held});
        let good = closed_bundle(&k, Some(record(&sha)), &sha);
        let report = verify(&good, Some(&k.verifying_key())).unwrap();
        assert!(report.checks.iter().any(|c| c.contains("catalogue.json: catalogue version 3")), "{report:?}");
        assert!(report.checks.iter().any(|c| c.contains("revisions.json: latest revision 2")), "{report:?}");

        let missing = verify(&closed_bundle(&k, None, &sha), None).unwrap_err();
        assert_eq!(missing.file, "catalogue.json", "{missing}");
        // Signed as it is, but the catalogue it holds is not the one its record hashes.
        let wrong = verify(&closed_bundle(&k, Some(record(&"0".repeat(64))), &"0".repeat(64)), None).unwrap_err();
        assert_eq!(wrong.file, "catalogue.json");
        assert!(wrong.reason.contains(&sha), "{wrong}");
        // A whole, self-consistent catalogue version that is not the one the manifest names.
        let other = verify(&closed_bundle(&k, Some(record(&sha)), &"1".repeat(64)), None).unwrap_err();
        assert!(other.reason.contains("is not catalogue version 3"), "{other}");
    }

    #[test]
    fn a_signed_bundle_verifies_with_its_own_key_and_a_pinned_one() {
        let k = key(7);
        let bytes = bundle_with(&k);
        let report = verify(&bytes, None).unwrap();
        assert!(report.checks.iter().any(|c| c.starts_with("manifest.json: Ed25519 signature valid")));
        // Every content file and the public key (SPEC §9: the manifest lists every other file).
        assert_eq!(report.checks.iter().filter(|c| c.contains("sha256 matches")).count(), CONTENT_FILES.len() + 1);
        assert!(report.checks.iter().any(|c| c.starts_with("public-key.txt: sha256 matches")), "{:?}", report.checks);
        verify(&bytes, Some(&k.verifying_key())).unwrap();
    }

    #[test]
    fn a_one_byte_change_in_any_file_is_caught_and_named() {
        let bytes = bundle_with(&key(7));
        let all: Vec<&str> = CONTENT_FILES.iter().copied().chain([MANIFEST, SIGNATURE, PUBLIC_KEY]).collect();
        for target in all {
            let tampered = rezip(
                &bytes,
                |name, mut data| {
                    if name == target {
                        // flip one hex digit in signature/key files so they stay well-formed
                        let i = data.iter().position(|b| b.is_ascii_hexdigit() && *b != b'0').unwrap_or(0);
                        data[i] = if data[i] == b'1' { b'2' } else { b'1' };
                    }
                    Some(data)
                },
                None,
            );
            let failure = verify(&tampered, None).expect_err(target);
            let named = match target {
                // an altered signature or key shows up as a manifest whose signature fails
                SIGNATURE | PUBLIC_KEY => failure.file == MANIFEST || failure.file == target,
                _ => failure.file == target,
            };
            assert!(named, "{target}: {failure}");
        }
    }

    #[test]
    fn an_added_file_and_a_removed_file_are_caught() {
        let bytes = bundle_with(&key(7));
        let added = rezip(&bytes, |_, d| Some(d), Some(("extra.csv", b"sneaky")));
        assert_eq!(verify(&added, None).unwrap_err().file, "extra.csv");
        let removed = rezip(&bytes, |name, d| (name != "outages.csv").then_some(d), None);
        let failure = verify(&removed, None).unwrap_err();
        assert_eq!(failure.file, "outages.csv");
        assert!(failure.reason.contains("missing"), "{failure}");
    }

    #[test]
    fn a_bundle_signed_by_another_key_fails_against_a_pinned_key() {
        let bytes = bundle_with(&key(9));
        let failure = verify(&bytes, Some(&key(7).verifying_key())).unwrap_err();
        assert_eq!(failure.file, PUBLIC_KEY);
        assert!(failure.reason.contains("signed by another key"));
        // and a forger who swaps in their own key is caught by the pin as well
        let swapped = rezip(
            &bytes,
            |name, d| {
                if name == PUBLIC_KEY {
                    Some(format!("{}\n", hex::encode(key(7).verifying_key().to_bytes())).into_bytes())
                } else {
                    Some(d)
                }
            },
            None,
        );
        assert_eq!(verify(&swapped, Some(&key(7).verifying_key())).unwrap_err().file, MANIFEST);
    }

    #[test]
    fn the_manifest_lists_the_public_key_and_a_reworded_key_file_is_caught() {
        let bytes = bundle_with(&key(7));
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        let mut manifest = String::new();
        zip.by_name(MANIFEST).unwrap().read_to_string(&mut manifest).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let names: Vec<&str> =
            manifest["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert!(names.contains(&PUBLIC_KEY), "{names:?}");
        assert!(!names.contains(&MANIFEST) && !names.contains(&SIGNATURE), "{names:?}");
        // The same key with a blank line added still checks the signature, but not the sha256.
        let reworded = rezip(
            &bytes,
            |name, mut d| {
                Some(if name == PUBLIC_KEY {
                    d.push(b'\n');
                    d
                } else {
                    d
                })
            },
            None,
        );
        let failure = verify(&reworded, None).unwrap_err();
        assert_eq!(failure.file, PUBLIC_KEY, "{failure}");
        assert!(failure.reason.contains("does not match the manifest"), "{failure}");
    }

    #[test]
    fn a_signed_manifest_that_does_not_list_the_public_key_is_refused() {
        // As the first bundles were written: every content file listed, the key not.
        let k = key(7);
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let mut files = Vec::new();
        for name in CONTENT_FILES {
            let data = content(name);
            out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(&data).unwrap();
            files.push(ManifestFile {
                name: name.to_string(),
                sha256: hex::encode(Sha256::digest(&data)),
                bytes: data.len() as u64,
            });
        }
        let manifest = serde_json::to_vec(&serde_json::json!({"format": FORMAT, "files": files})).unwrap();
        let signature = ed25519_dalek::Signer::sign(&k, &manifest);
        for (name, data) in [
            (MANIFEST, manifest.clone()),
            (SIGNATURE, format!("{}\n", hex::encode(signature.to_bytes())).into_bytes()),
            (PUBLIC_KEY, format!("{}\n", hex::encode(k.verifying_key().to_bytes())).into_bytes()),
        ] {
            out.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(&data).unwrap();
        }
        let bytes = out.finish().unwrap().into_inner();
        let failure = verify(&bytes, Some(&k.verifying_key())).unwrap_err();
        assert_eq!(failure.file, PUBLIC_KEY, "{failure}");
        assert!(failure.reason.contains("not listed in the manifest"), "{failure}");
    }

    #[test]
    fn garbage_is_not_a_bundle() {
        let failure = verify(b"not a zip at all", None).unwrap_err();
        assert_eq!(failure.file, "bundle");
    }
}
