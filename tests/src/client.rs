//! HTTP clients for tests: reqwest everywhere (async for tokio tests, blocking for the
//! plain-thread end-to-end tests), with the ring crypto provider installed, and `Reply`,
//! a response read whole so a test can look at it more than once.

use reqwest::blocking;

/// The async client for tokio tests.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

/// A blocking client trusting the system roots plus `ca_pem` when given. Not for use
/// inside a tokio runtime (reqwest's blocking client runs its own).
pub fn blocking_client(ca_pem: Option<&[u8]>) -> blocking::Client {
    install_crypto_provider();
    let mut builder = blocking::Client::builder();
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

/// Installs rustls' ring provider for the process (once; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads a blocking response whole.
    pub fn read(resp: blocking::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.bytes().unwrap().to_vec();
        Reply { status, headers, body }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
