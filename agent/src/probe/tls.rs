//! The `tls` probe: handshake, chain verification against the trusted roots, and the
//! days left before the certificate expires (`cert_expiry` under `min_days_valid`).

use std::time::SystemTime;

use probity_config::probe::TlsSpec;
use probity_config::wire::ErrorKind;
use tokio::time::Instant;

use super::net::{self, Clock, failure, unix_to_rfc3339};
use super::{Details, Outcome};

pub async fn run(spec: &TlsSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = async {
        let (addrs, dns_us) = net::resolve(&clock, &spec.target.host, spec.target.port).await?;
        details.phases.dns_us = dns_us;
        let (tcp, connect_us) = net::connect(&clock, &addrs).await?;
        details.phases.connect_us = Some(connect_us);
        let name = spec.effective_server_name();
        let handshake = match net::tls_handshake(&clock, tcp, name, true, false).await {
            Ok(h) => h,
            Err(f) => {
                details.cert_not_after = f.not_after;
                // An expired certificate is the expiry this probe watches for, not a
                // generic TLS fault.
                let kind = if f.expired { ErrorKind::CertExpiry } else { f.failure.kind };
                return Err(failure(kind, f.failure.message));
            }
        };
        details.phases.tls_us = Some(handshake.tls_us);
        details.cert_not_after = handshake.not_after;
        let not_after = handshake
            .not_after
            .ok_or_else(|| failure(ErrorKind::Tls, format!("tls: {name} sent no certificate that could be read")))?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let days_left = (not_after - now).div_euclid(86_400);
        if days_left < i64::from(spec.min_days_valid) {
            return Err(failure(
                ErrorKind::CertExpiry,
                format!(
                    "cert_expiry: certificate of {name} expires in {days_left} days ({}), under min_days_valid {}",
                    unix_to_rfc3339(not_after),
                    spec.min_days_valid
                ),
            ));
        }
        Ok(())
    }
    .await;
    clock.finish(details, result)
}
