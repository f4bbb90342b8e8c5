//! Evidence bundles (SPEC §9): a zip per agreement and period whose `manifest.json` lists
//! every file with its sha256 and is signed with the collector's Ed25519 key, so anyone
//! holding the public key can check the figures offline.

pub mod bundle;
pub mod export;
pub mod signing;
pub mod verify;

/// The files a complete bundle holds besides the three that carry the signature.
pub const CONTENT_FILES: [&str; 7] =
    ["summary.json", "daily.csv", "outages.csv", "results.csv", "completeness.csv", "methodology.md", "report.html"];

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public-key.txt";

/// Identifies the manifest layout, so a verifier can refuse a format it does not know.
pub const FORMAT: &str = "probity-evidence/1";
