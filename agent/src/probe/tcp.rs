//! The `tcp` probe: resolve, connect, close. Up when the handshake completes in time.

use probity_config::probe::TcpSpec;
use tokio::time::Instant;

use super::net::{self, Clock};
use super::{Details, Outcome};

pub async fn run(spec: &TcpSpec, deadline: Instant) -> Outcome {
    let clock = Clock::start(deadline);
    let mut details = Details::default();
    let result = async {
        let (addrs, dns_us) = net::resolve(&clock, &spec.target.host, spec.target.port).await?;
        details.phases.dns_us = dns_us;
        let (_stream, connect_us) = net::connect(&clock, &addrs).await?;
        details.phases.connect_us = Some(connect_us);
        Ok(())
    }
    .await;
    clock.finish(details, result)
}
