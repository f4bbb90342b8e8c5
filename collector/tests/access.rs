//! Router tests of SPEC §12 through `oneshot`: who may call what (every role against every
//! endpoint, table-driven), what a scoped token sees (never another agreement's id, in any
//! answer, the evidence zip's files included), `/metrics` protection, the security headers
//! and the ids echoed by 404s.

use probity_tests::ingest as support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use probity_collector::state::{AppState, StateSpec};
use probity_collector::store::{Store, StoreOptions};
use support::*;
use tower::ServiceExt;

/// Tokens of every kind SPEC §12 names, by the secret each test sends.
const READER: &str = "probity_reader";
const LEGACY: &str = "probity_legacy-reader";
const OPERATOR: &str = "probity_ops";
const MANAGER: &str = "probity_boss";
/// A supplier's reader, scoped to the underpinning contract `psp-uc` only.
const ACME: &str = "probity_acme";
/// An operator scoped to the service `shop` (and so to `shop-sla`).
const SHOP_OPS: &str = "probity_shop-ops";

struct Harness {
    _dir: tempfile::TempDir,
    #[allow(dead_code)]
    state: AppState,
    app: Router,
}

fn hash(token: &str) -> String {
    hex::encode(probity_config::token_sha256(token))
}

/// Services `shop` (probes web, db) and `psp` (probe psp-api, on a2 only), agreements
/// `shop-sla` on shop, `psp-uc` and `psp-ola` on psp, and the tokens above; `api_extra`
/// goes into `[api]`.
fn config(dir: &std::path::Path, api_extra: &str) -> String {
    let api = format!(
        "[api]\nread_tokens_sha256 = [\"{}\"]\n{api_extra}\n\n\
         [[api.tokens]]\nid = \"reader\"\ntoken_sha256 = \"{}\"\nrole = \"reader\"\n\n\
         [[api.tokens]]\nid = \"ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\n\n\
         [[api.tokens]]\nid = \"boss\"\ntoken_sha256 = \"{}\"\nrole = \"manager\"\n\n\
         [[api.tokens]]\nid = \"acme\"\ntoken_sha256 = \"{}\"\nrole = \"reader\"\nagreements = [\"psp-uc\"]\n\n\
         [[api.tokens]]\nid = \"shop-ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\nservices = [\"shop\"]\n\n",
        hash(LEGACY),
        hash(READER),
        hash(OPERATOR),
        hash(MANAGER),
        hash(ACME),
        hash(SHOP_OPS),
    );
    let extra = "[[services]]\nid = \"psp\"\nname = \"Acme PSP\"\nowner = \"acme\"\n\n\
         \x20 [[services.probes]]\n  id = \"psp-api\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n  agents = [\"a2\"]\n\n\
         [[agreements]]\nid = \"shop-sla\"\nkind = \"sla\"\nservice = \"shop\"\navailability = 99.9\n\n\
         [[agreements]]\nid = \"psp-uc\"\nkind = \"uc\"\nservice = \"psp\"\navailability = 99.95\n\n\
         [[agreements]]\nid = \"psp-ola\"\nkind = \"ola\"\nservice = \"psp\"\navailability = 99.0\n";
    api + &config_text("127.0.0.1:0", &dir.join("data"), extra)
}

fn harness(api_extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config(dir.path(), api_extra)).unwrap();
    let config = probity_config::load_collector_config(&config_path).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions { cache_capacity: 16 << 20 }).unwrap());
    let state = AppState::new(config, store, StateSpec { config_path: Some(config_path), ..StateSpec::default() });
    let app = probity_collector::app(state.clone());
    Harness { _dir: dir, state, app }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body).unwrap()["error"].as_str().unwrap().to_string()
    }
}

async fn call(app: &Router, method: Method, path: &str, token: Option<&str>, body: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let resp = app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

async fn get(app: &Router, path: &str, token: Option<&str>) -> Answer {
    call(app, Method::GET, path, token, "").await
}

#[tokio::test]
async fn every_answer_says_nosniff_and_the_dashboard_carries_a_strict_csp_and_deny_framing() {
    let h = harness("");
    for (path, token) in [
        ("/healthz", None),
        ("/api/v1/services", Some(READER)),
        ("/api/v1/services", None),
        ("/api/v1/no-such-thing", None),
        ("/metrics", Some(READER)),
        ("/api/v1/evidence/public-key", None),
        ("/", None),
    ] {
        let a = get(&h.app, path, token).await;
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path} ({})", a.status);
    }
    for path in ["/", "/dashboard.js", "/dashboard.css"] {
        let a = get(&h.app, path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: the dashboard's files are open");
        assert_eq!(a.headers[header::CONTENT_SECURITY_POLICY], probity_collector::api::DASHBOARD_CSP, "{path}");
        assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
    let csp = probity_collector::api::DASHBOARD_CSP;
    assert!(!csp.contains("unsafe-") && !csp.contains("http") && !csp.contains('*'), "{csp}");
    assert!(csp.starts_with("default-src 'none';") && csp.contains("frame-ancestors 'none'"), "{csp}");
    // What the policy allows is what the page needs: no inline script or style, nothing
    // from another origin (a browser would refuse it).
    let page = get(&h.app, "/", None).await.text();
    for inline in ["<style", " style=", "<script>", " onclick=", " onload=", " onchange=", "javascript:"] {
        assert!(!page.contains(inline), "the dashboard page has {inline:?}, which the CSP refuses");
    }
    for (i, _) in page.match_indices("src=\"").chain(page.match_indices("href=\"")) {
        let url = &page[i..];
        let url = &url[url.find('"').unwrap() + 1..];
        assert!(url.starts_with('/') && !url.starts_with("//"), "the dashboard loads {url:?} from another origin");
    }
}

#[tokio::test]
async fn metrics_need_an_unscoped_token_unless_metrics_open() {
    let h = harness("");
    assert_eq!(get(&h.app, "/metrics", None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&h.app, "/metrics", Some("probity_nope")).await.status, StatusCode::UNAUTHORIZED);
    let scoped = get(&h.app, "/metrics", Some(ACME)).await;
    assert_eq!(scoped.status, StatusCode::FORBIDDEN);
    assert!(scoped.error().contains("token acme is scoped"), "{}", scoped.error());
    for t in [READER, LEGACY, OPERATOR, MANAGER] {
        let a = get(&h.app, "/metrics", Some(t)).await;
        assert_eq!(a.status, StatusCode::OK, "{t}");
        assert!(a.text().contains("probity_"), "{t}");
    }
    let open = harness("metrics_open = true");
    assert_eq!(get(&open.app, "/metrics", None).await.status, StatusCode::OK);
    assert_eq!(get(&open.app, "/api/v1/services", None).await.status, StatusCode::UNAUTHORIZED, "only /metrics opens");
}

#[tokio::test]
async fn a_404_echoes_an_unknown_id_cut_to_64_characters() {
    let h = harness("");
    let long = "z".repeat(10_000);
    let cut = format!("{}…", "z".repeat(63));
    for (path, what) in [
        (format!("/api/v1/services/{long}/availability"), "service"),
        (format!("/api/v1/services/{long}/latency"), "service"),
        (format!("/api/v1/agreements/{long}/report"), "agreement"),
        (format!("/api/v1/agreements/{long}/evidence"), "agreement"),
        (format!("/api/v1/agreements/{long}/periods/2026-11/revisions"), "agreement"),
    ] {
        let a = get(&h.app, &path, Some(READER)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{what}");
        assert_eq!(a.error(), format!("unknown {what} \"{cut}\""), "{path:.60}");
    }
    let a = get(&h.app, &format!("/api/v1/services/shop/availability?calendar={long}"), Some(READER)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().starts_with(&format!("unknown calendar \"{cut}\"")) && a.body.len() < 400, "{}", a.error());
}
