//! The `tls` probe: handshake, chain verification against the trusted roots (and the
//! probe's `ca_file`), and the days left before the certificate expires (`cert_expiry`
//! under `min_days_valid`, and for one already expired, as every kind says it).

use probity_config::probe::TlsSpec;
use probity_config::wire::ErrorKind;
use tokio::time::Instant;

use super::net::{self, Clock, TlsOptions, failure};
use super::{Details, Outcome};

pub async fn run(spec: &TlsSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = async {
        let (addrs, dns_us) = net::resolve(&clock, &spec.target.host, spec.target.port, spec.ip_protocol).await?;
        details.phases.dns_us = dns_us;
        let (tcp, connect_us) = net::connect(&clock, &addrs).await?;
        details.phases.connect_us = Some(connect_us);
        let name = spec.effective_server_name();
        let options = TlsOptions { ca_file: spec.ca_file.as_deref(), ..TlsOptions::new(name) };
        let handshake = match net::tls_handshake(&clock, tcp, options).await {
            Ok(h) => h,
            Err(f) => {
                details.cert_not_after = f.not_after;
                details.chain = f.chain;
                return Err(f.failure);
            }
        };
        details.phases.tls_us = Some(handshake.tls_us);
        details.cert_not_after = handshake.not_after;
        details.chain = handshake.chain;
        let not_after = handshake
            .not_after
            .ok_or_else(|| failure(ErrorKind::Tls, format!("tls: {name} sent no certificate that could be read")))?;
        check_days_left(name, not_after, spec.min_days_valid)
    }
    .await;
    clock.finish(details, result)
}

/// `cert_expiry` when fewer than `min_days` whole days are left.
pub(crate) fn check_days_left(name: &str, not_after: i64, min_days: u32) -> Result<(), super::Failure> {
    let now = net::unix_now();
    if net::days_left(not_after, now) < i64::from(min_days) {
        return Err(failure(
            ErrorKind::CertExpiry,
            format!(
                "cert_expiry: certificate of {name} {}, under min_days_valid {min_days}",
                net::expiry_words(not_after, now)
            ),
        ));
    }
    Ok(())
}
