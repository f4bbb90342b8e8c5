//! Writing a bundle: each content file is streamed into the zip through a hashing
//! writer (no file is ever held whole in memory), then the public key; the manifest
//! listing every one of them with its sha256 is written last, then its signature (the one
//! file the manifest cannot list: it signs the manifest's bytes).

use std::io::{self, Seek, Write};

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::{FORMAT, MANIFEST, PUBLIC_KEY, SIGNATURE};

/// One file as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ManifestFile {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("writing the evidence zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the evidence zip: {0}")]
    Io(#[from] io::Error),
    #[error("evidence file {0} was added twice")]
    Duplicate(String),
}

pub struct BundleWriter<W: Write + Seek> {
    zip: ZipWriter<W>,
    files: Vec<ManifestFile>,
}

impl<W: Write + Seek> BundleWriter<W> {
    pub fn new(out: W) -> Self {
        BundleWriter { zip: ZipWriter::new(out), files: Vec::new() }
    }

    /// Adds one file whose content `write` streams; returns what the manifest will say of it.
    pub fn add_file(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<&ManifestFile, BundleError> {
        if [MANIFEST, SIGNATURE, PUBLIC_KEY].contains(&name) {
            return Err(BundleError::Duplicate(name.to_string()));
        }
        self.add_listed(name, write)
    }

    fn add_listed(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<&ManifestFile, BundleError> {
        if self.files.iter().any(|f| f.name == name) {
            return Err(BundleError::Duplicate(name.to_string()));
        }
        self.zip.start_file(name, options())?;
        let mut hashing = HashingWriter { inner: &mut self.zip, hasher: Sha256::new(), bytes: 0 };
        write(&mut hashing)?;
        let (sha256, bytes) = (hex::encode(hashing.hasher.finalize()), hashing.bytes);
        self.files.push(ManifestFile { name: name.to_string(), sha256, bytes });
        Ok(self.files.last().expect("just pushed"))
    }

    /// Writes the public key, `manifest.json` (`header` fields, then `format` and `files`,
    /// the key's file among them) and its signature, and closes the zip.
    pub fn finish(
        mut self,
        header: serde_json::Map<String, serde_json::Value>,
        key: &SigningKey,
    ) -> Result<W, BundleError> {
        let public_key = format!("{}\n", super::signing::public_key_hex(key));
        self.add_listed(PUBLIC_KEY, |o| o.write_all(public_key.as_bytes()))?;
        let mut manifest = header;
        manifest.insert("format".into(), FORMAT.into());
        manifest.insert("files".into(), serde_json::to_value(&self.files).map_err(io::Error::other)?);
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        let signature = key.sign(&manifest_bytes);
        self.zip.start_file(MANIFEST, options())?;
        self.zip.write_all(&manifest_bytes)?;
        self.zip.start_file(SIGNATURE, options())?;
        self.zip.write_all(format!("{}\n", hex::encode(signature.to_bytes())).as_bytes())?;
        Ok(self.zip.finish()?)
    }
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

struct HashingWriter<'a, W: Write> {
    inner: &'a mut W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
