//! `probity-collector maintenance add|list|end|cancel`: a thin client of the maintenance
//! API (SPEC §11) for deploy pipelines. It sends what it is given and prints what the
//! collector answers; every rule (ids, times, roles, scopes, notice) is the collector's.
//! Instants may be RFC 3339, `now`, or `+DURATION` from now (`+2h`), so a pipeline can say
//! "from now for two hours" without computing a timestamp.

use std::path::Path;
use std::time::Duration;

use probity_config::time::{parse_instant, rfc3339};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Where the collector is and how to authenticate.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The collector's base URL, e.g. `https://collector:7878`.
    pub url: &'a str,
    /// A file holding an API token (an operator's for writes); `None` for an open read API.
    pub token_file: Option<&'a Path>,
    /// An extra root certificate (PEM) for a collector with a private CA.
    pub ca_file: Option<&'a Path>,
}

/// One request of the subcommand.
#[derive(Clone, Debug)]
pub enum Request {
    Add { body: Value },
    List { query: Vec<(String, String)> },
    End { id: String, end: String },
    Cancel { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The collector answered with an error: its status and message.
    #[error("the collector answered {status}: {message}")]
    Refused { status: u16, message: String },
    /// Nothing was sent or nothing came back (bad arguments, files, network).
    #[error("{0}")]
    Failed(String),
}

impl ClientError {
    /// 1 when the collector refused, 2 when the request could not be made.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused { .. } => 1,
            ClientError::Failed(_) => 2,
        }
    }
}

/// `now`, `+DURATION` (from `now_ms`) or an RFC 3339 instant, as RFC 3339.
pub fn instant(text: &str, now_ms: i64) -> Result<String, ClientError> {
    let text = text.trim();
    if text == "now" {
        return Ok(rfc3339(now_ms));
    }
    if let Some(d) = text.strip_prefix('+') {
        let d = probity_config::units::parse_duration(d)
            .map_err(|e| ClientError::Failed(format!("\"{text}\": {e}; write e.g. +2h")))?;
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(rfc3339(now_ms.saturating_add(ms)));
    }
    parse_instant(text).map(|t| t.to_string()).map_err(|e| ClientError::Failed(format!("{e}, now, or +2h")))
}

/// Sends `request` and returns the collector's JSON answer.
pub fn run(target: &Target<'_>, request: &Request) -> Result<Value, ClientError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| ClientError::Failed(format!("{what}: {e}"));
    let token = match target.token_file {
        None => None,
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| failed(&format!("token file {}", path.display()), &e))?;
            let token = text.trim().to_string();
            if token.is_empty() {
                return Err(ClientError::Failed(format!(
                    "token file {} is empty; put an operator token in it (probity-collector new-token ID --role operator)",
                    path.display()
                )));
            }
            Some(token)
        }
    };
    let base =
        url::Url::parse(target.url.trim_end_matches('/')).map_err(|e| failed(&format!("--url {}", target.url), &e))?;
    let http = client(target.ca_file)?;
    let path = |p: &str| base.join(p).map_err(|e| failed("url", &e));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| failed("async runtime", &e))?;
    runtime.block_on(async {
        let builder = match request {
            Request::Add { body } => http.post(path("/api/v1/maintenance")?).json(body),
            Request::List { query } => {
                let mut url = path("/api/v1/maintenance")?;
                if !query.is_empty() {
                    url.query_pairs_mut().extend_pairs(query);
                }
                http.get(url)
            }
            Request::End { id, end } => {
                http.patch(path(&format!("/api/v1/maintenance/{id}"))?).json(&json!({ "end": end }))
            }
            Request::Cancel { id } => http.delete(path(&format!("/api/v1/maintenance/{id}"))?),
        };
        let builder = match &token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        };
        let response = builder.send().await.map_err(|e| failed(&format!("request to {}", target.url), &e))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| failed("the answer is not JSON", &e))?;
        if status.is_success() {
            Ok(body)
        } else {
            let message = body["error"].as_str().unwrap_or("(no message)").to_string();
            Err(ClientError::Refused { status: status.as_u16(), message })
        }
    })
}

/// An HTTP client trusting the web's roots, the system's, and `ca_file`.
fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, ClientError> {
    probity_agent::install_crypto_provider();
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| ClientError::Failed(format!("--ca-file {}: {e}", path.display())))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ClientError::Failed(format!("--ca-file {}: {e}", path.display())))?;
            roots.add(cert).map_err(|e| ClientError::Failed(format!("--ca-file {}: {e}", path.display())))?;
        }
    }
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("probity-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Failed(format!("http client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_now_or_a_duration_from_now() {
        let now = 1_763_812_800_000; // 2025-11-22T12:00:00Z
        assert_eq!(instant("now", now).unwrap(), "2025-11-22T12:00:00Z");
        assert_eq!(instant("+2h", now).unwrap(), "2025-11-22T14:00:00Z");
        assert_eq!(instant("2026-11-10T22:00:00+01:00", now).unwrap(), "2026-11-10T21:00:00Z");
        assert!(instant("+soon", now).unwrap_err().to_string().contains("write e.g. +2h"));
        assert!(instant("tomorrow", now).unwrap_err().to_string().contains("not an RFC 3339 instant"));
    }
}
