//! Evidence bundles (SPEC §9): a zip per agreement and period whose `manifest.json` lists
//! every other file with its sha256 and is signed with the collector's Ed25519 key, so
//! anyone holding the public key can check the figures offline.
//!
//! One file per output (blackbox_exporter's `prober/`): `export.rs` decides what goes in
//! the bundle and in which order; `daily_csv.rs`, `outages_csv.rs`, `results_csv.rs`,
//! `completeness_csv.rs`, `agents_csv.rs`, `maintenance_csv.rs`, `methodology_md.rs` and `report_html.rs` each write one file,
//! straight into the zip; `bundle.rs` hashes, lists and signs them.

mod agents_csv;
pub mod bundle;
mod completeness_csv;
mod daily_csv;
pub mod export;
mod maintenance_csv;
mod methodology_md;
mod outages_csv;
mod report_html;
mod results_csv;
pub mod signing;
pub mod verify;

use std::io::Write;

/// The files a complete bundle holds besides the three that carry the signature.
pub const CONTENT_FILES: [&str; 7] =
    ["summary.json", "daily.csv", "outages.csv", "results.csv", "completeness.csv", "methodology.md", "report.html"];

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const PUBLIC_KEY: &str = "public-key.txt";

/// Identifies the manifest layout, so a verifier can refuse a format it does not know.
pub const FORMAT: &str = "probity-evidence/1";

/// A CSV writer as every CSV of the bundle uses it: RFC 4180 quoting (a field holding a
/// comma, quote or line break is quoted, quotes doubled), `\n` line ends, buffered.
fn csv_writer(out: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new().buffer_capacity(64 * 1024).from_writer(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says_and_only_when_needed() {
        let mut bytes = Vec::new();
        let mut w = super::csv_writer(&mut bytes);
        w.write_record(["a,b", "say \"hi\"", "two\nlines", "cr\rhere", "plain", ""]).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\",plain,\n"
        );
    }
}
