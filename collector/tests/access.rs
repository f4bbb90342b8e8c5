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
/// A manager scoped to `psp-uc`: may restate it, and nothing else.
const ACME_BOSS: &str = "probity_acme-boss";

struct Harness {
    _dir: tempfile::TempDir,
    #[allow(dead_code)]
    state: AppState,
    app: Router,
}

fn hash(token: &str) -> String {
    hex::encode(probity_config::token_sha256(token))
}

/// Services `shop` (probes web, db) and `psp` (probe psp-api, on a2 only; it depends on
/// shop, so psp-uc's 99.95 % over shop-ola's 99.0 % is a structural gap), agreements
/// `shop-sla` and `shop-ola` on shop, `psp-uc` and `psp-ola` on psp, and the tokens above; `api_extra`
/// goes into `[api]`.
fn config(dir: &std::path::Path, api_extra: &str) -> String {
    let api = format!(
        "[api]\nread_tokens_sha256 = [\"{}\"]\n{api_extra}\n\n\
         [[api.tokens]]\nid = \"reader\"\ntoken_sha256 = \"{}\"\nrole = \"reader\"\n\n\
         [[api.tokens]]\nid = \"ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\n\n\
         [[api.tokens]]\nid = \"boss\"\ntoken_sha256 = \"{}\"\nrole = \"manager\"\n\n\
         [[api.tokens]]\nid = \"acme\"\ntoken_sha256 = \"{}\"\nrole = \"reader\"\nagreements = [\"psp-uc\"]\n\n\
         [[api.tokens]]\nid = \"shop-ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\nservices = [\"shop\"]\n\n\
         [[api.tokens]]\nid = \"acme-boss\"\ntoken_sha256 = \"{}\"\nrole = \"manager\"\nagreements = [\"psp-uc\"]\n\n",
        hash(LEGACY),
        hash(READER),
        hash(OPERATOR),
        hash(MANAGER),
        hash(ACME),
        hash(SHOP_OPS),
        hash(ACME_BOSS),
    );
    let extra = "[[services]]\nid = \"psp\"\nname = \"Acme PSP\"\nowner = \"acme\"\ndepends_on = [\"shop\"]\n\n\
         \x20 [[services.probes]]\n  id = \"psp-api\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n  agents = [\"a2\"]\n\n\
         [[agreements]]\nid = \"shop-sla\"\nkind = \"sla\"\nservice = \"shop\"\navailability = 99.9\n\n\
         [[agreements]]\nid = \"shop-ola\"\nkind = \"ola\"\nservice = \"shop\"\navailability = 99.0\n\n\
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

/// A path of the document with each `{param}` given a value the router can route.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').unwrap() + open;
        out += &rest[..open];
        out += match &rest[open + 1..close] {
            "n" => "1",
            "label" => "2026-11",
            "id" if path.starts_with("/api/v1/services/") => "shop",
            "id" => "shop-sla",
            _ => "x",
        };
        rest = &rest[close + 1..];
    }
    out + rest
}

/// Every `.route("…"` (or `route_service`, `nest`, `nest_service`) literal in the
/// collector's source: a plain axum route, which would be served without being in the
/// document (routes are registered with `utoipa_axum::routes!`).
fn plain_routes_in_source() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.extend(plain_routes(&text).into_iter().map(|r| (path.display().to_string(), r)));
            }
        }
    }
    found
}

/// The paths of the plain axum routes in one file's text.
fn plain_routes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for call in [".route(\"", ".route_service(\"", ".nest(\"", ".nest_service(\""] {
        for (i, _) in text.match_indices(call) {
            let rest = &text[i + call.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    found
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_is_served() {
    // The scan sees what it is for.
    let sample = "Router::new().route(\"/api/v1/x\", get(x)).nest(\"/y\", inner).routes(routes!(z))";
    assert_eq!(plain_routes(sample), ["/api/v1/x", "/y"]);
    let h = harness("");
    let a = get(&h.app, "/api/v1/openapi.json", None).await;
    assert_eq!(a.status, StatusCode::OK, "the document is open");
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    let doc: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc, serde_json::to_value(probity_collector::api::openapi::document()).unwrap());
    let paths = doc["paths"].as_object().unwrap();
    // Both directions: what the document names, the router serves (not the fallback, not
    // 405) ...
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = call(&h.app, m, &concrete(path), Some(MANAGER), "{}").await;
            assert_ne!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            if answer.status == StatusCode::NOT_FOUND {
                assert!(!answer.error().starts_with("no such endpoint"), "{method} {path} is documented, not routed");
            }
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
        }
    }
    assert!(operations >= 20, "{operations} operations");
    // ... and a route added without its annotation is not served unseen: no plain axum
    // route in the source, and every route this test calls elsewhere is documented.
    let plain = plain_routes_in_source();
    for (file, path) in &plain {
        assert!(
            paths.contains_key(path),
            "{file}: route {path} is not in the OpenAPI document (register it with routes!)"
        );
    }
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
        "/api/v1/evidence/public-key",
        "/api/v1/services",
        "/api/v1/services/{id}/availability",
        "/api/v1/services/{id}/latency",
        "/api/v1/agreements/{id}/report",
        "/api/v1/agreements/{id}/evidence",
        "/api/v1/agreements/{id}/periods/{label}/revisions",
        "/api/v1/agreements/{id}/periods/{label}/restate",
        "/api/v1/compliance",
        "/api/v1/gaps",
        "/api/v1/agents",
        "/api/v1/catalogue/versions",
        "/api/v1/catalogue/versions/{n}",
        "/api/v1/agent/assignment",
        "/api/v1/ingest",
        "/api/v1/maintenance",
        "/api/v1/maintenance/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} is not in the document");
    }
    // Every error answer has the one error shape.
    let error_ref = "#/components/schemas/ErrorBody";
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, error_ref, "{method} {path} {status}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_documented_query_parameter_is_accepted_by_its_endpoint() {
    let h = harness("");
    let doc = serde_json::to_value(probity_collector::api::openapi::document()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(operation) = item.get("get") else { continue };
        let who = if operation["tags"][0] == "agent" { token("a1") } else { MANAGER.to_string() };
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().unwrap();
            let value = match name {
                "period" => "2026-11",
                "from" => "2026-11-01T00:00:00Z",
                "to" => "2026-11-02T00:00:00Z",
                "calendar" => "24x7",
                "percentiles" => "50,99",
                "step" => "hour",
                "agent" => "a1",
                "service" => "shop",
                "include_cancelled" => "true",
                other => panic!("{path}: no sample value for the documented parameter {other}"),
            };
            let a = call(&h.app, Method::GET, &format!("{}?{name}={value}", concrete(path)), Some(&who), "").await;
            if a.status == StatusCode::BAD_REQUEST {
                assert!(
                    !a.error().starts_with("unknown parameter"),
                    "{path} documents {name} but refuses it: {}",
                    a.error()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} parameters checked");
}

/// Checks `value` against a schema of the document: every object key is a documented
/// property (or the schema is a free-form object or map), and every value has a type the
/// schema allows. `$ref`, `allOf` (merged) and `oneOf` / `anyOf` (one must fit) are followed.
fn check_against(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    doc: &serde_json::Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return check_against(value, &doc["components"]["schemas"][name], doc, at, errors);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            let fits = options.iter().any(|o| {
                let mut e = Vec::new();
                check_against(value, o, doc, at, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: {value:.200} fits none of its {key}"));
            }
            return;
        }
    }
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone(),
            None => s.clone(),
        }
    };
    let mut properties = serde_json::Map::new();
    // A part that is an object with no properties (`Object`, a flattened free-form map)
    // lets any key in.
    let mut free_form = false;
    let mut parts = vec![schema.clone()];
    while let Some(part) = parts.pop() {
        let part = resolve(&part);
        if let Some(all) = part["allOf"].as_array() {
            parts.extend(all.iter().cloned());
        } else if part["type"] == "object" && part.get("properties").is_none() {
            free_form = true;
        }
        if let Some(p) = part["properties"].as_object() {
            properties.extend(p.clone());
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed = types.is_empty() || types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !allowed {
        errors.push(format!("{at}: a {kind} where the document says {types:?}"));
        return;
    }
    match value {
        Value::Object(map) => {
            let extra = &schema["additionalProperties"];
            for (key, v) in map {
                let at = format!("{at}.{key}");
                if let Some(p) = properties.get(key) {
                    check_against(v, p, doc, &at, errors);
                } else if extra.is_object() {
                    check_against(v, extra, doc, &at, errors);
                } else if !free_form && extra != &Value::Bool(true) && !properties.is_empty() {
                    errors.push(format!("{at}: not in the document"));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_against(v, &schema["items"], doc, &format!("{at}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_json_answer_has_the_shape_the_document_gives_it() {
    let h = harness("");
    probity_collector::history::record_catalogue(&h.state, probity_collector::history::versions::Source::File)
        .await
        .unwrap();
    for (agent, probe) in [("a1", "db"), ("a2", "psp-api"), ("a3", "web")] {
        let req = batch(agent, probe, 1, 300);
        let a =
            call(&h.app, Method::POST, "/api/v1/ingest", Some(&token(agent)), &serde_json::to_string(&req).unwrap())
                .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }
    let doc = serde_json::to_value(probity_collector::api::openapi::document()).unwrap();
    let mut errors = Vec::new();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(schema) = operation["responses"]["200"]["content"]["application/json"].get("schema") else {
                continue;
            };
            let (m, who, body) = match (method.as_str(), operation["tags"][0].as_str()) {
                ("get", Some("agent")) => (Method::GET, token("a1"), String::new()),
                ("get", _) => (Method::GET, READER.to_string(), String::new()),
                ("post", _) if path == "/api/v1/ingest" => {
                    (Method::POST, token("a1"), serde_json::to_string(&batch("a1", "db", 1000, 5)).unwrap())
                }
                _ => continue,
            };
            for query in ["", "?period=2020-01"] {
                let url = format!("{}{query}", concrete(path));
                let a = call(&h.app, m.clone(), &url, Some(&who), &body).await;
                if a.status != StatusCode::OK {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
                check_against(&value, schema, &doc, &format!("{method} {url}"), &mut errors);
                checked += 1;
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(checked >= 20, "{checked} answers checked");
}

/// `probity-collector openapi` (what `.ci/run` hands to openapi-spec-validator) prints the
/// document the router serves.
#[test]
fn the_openapi_subcommand_prints_the_served_document() {
    let out = std::process::Command::new(probity_tests::bin("probity-collector")).arg("openapi").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, serde_json::to_value(probity_collector::api::openapi::document()).unwrap());
    assert_eq!(printed["info"]["title"], "probity collector");
    assert!(printed["components"]["securitySchemes"]["api_token"].is_object());
}

/// Who is asking, in the table below.
#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Stranger,
    Reader,
    Legacy,
    Operator,
    Manager,
    Acme,
    ShopOps,
    Agent,
    AcmeBoss,
}

impl Who {
    const ALL: [Who; 10] = [
        Who::Nobody,
        Who::Stranger,
        Who::Reader,
        Who::Legacy,
        Who::Operator,
        Who::Manager,
        Who::Acme,
        Who::ShopOps,
        Who::Agent,
        Who::AcmeBoss,
    ];

    fn token(self) -> Option<String> {
        match self {
            Who::Nobody => None,
            Who::Stranger => Some("probity_nobody-knows-me".into()),
            Who::Reader => Some(READER.into()),
            Who::Legacy => Some(LEGACY.into()),
            Who::Operator => Some(OPERATOR.into()),
            Who::Manager => Some(MANAGER.into()),
            Who::Acme => Some(ACME.into()),
            Who::ShopOps => Some(SHOP_OPS.into()),
            Who::Agent => Some(token("a1")),
            Who::AcmeBoss => Some(ACME_BOSS.into()),
        }
    }
}

/// The expected status of one request for each caller, in `Who::ALL` order.
struct Row {
    method: Method,
    path: &'static str,
    body: &'static str,
    expected: [u16; 10],
}

fn row(method: Method, path: &'static str, expected: [u16; 10]) -> Row {
    Row { method, path, body: "", expected }
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    let h = harness("");
    probity_collector::history::record_catalogue(&h.state, probity_collector::history::versions::Source::File)
        .await
        .unwrap();
    use Method as M;
    //                      nobody stranger reader legacy operator manager acme shop-ops agent acme-boss
    const OPEN: [u16; 10] = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200];
    const READ: [u16; 10] = [401, 401, 200, 200, 200, 200, 200, 200, 401, 200];
    const SHOP: [u16; 10] = [401, 401, 200, 200, 200, 200, 404, 200, 401, 404];
    const PSP: [u16; 10] = [401, 401, 200, 200, 200, 200, 200, 404, 401, 200];
    const PSP_OLA: [u16; 10] = [401, 401, 200, 200, 200, 200, 404, 404, 401, 404];
    let table = [
        row(M::GET, "/healthz", OPEN),
        row(M::GET, "/readyz", OPEN),
        row(M::GET, "/", OPEN),
        row(M::GET, "/dashboard.js", OPEN),
        row(M::GET, "/dashboard.css", OPEN),
        row(M::GET, "/api/v1/openapi.json", OPEN),
        row(M::GET, "/api/v1/evidence/public-key", OPEN),
        row(M::GET, "/metrics", [401, 401, 200, 200, 200, 200, 403, 403, 401, 403]),
        row(M::GET, "/api/v1/services", READ),
        row(M::GET, "/api/v1/compliance", READ),
        row(M::GET, "/api/v1/gaps", READ),
        row(M::GET, "/api/v1/agents", READ),
        row(M::GET, "/api/v1/catalogue/versions", READ),
        row(M::GET, "/api/v1/catalogue/versions/1", READ),
        row(M::GET, "/api/v1/services/shop/availability", SHOP),
        row(M::GET, "/api/v1/services/shop/latency", SHOP),
        row(M::GET, "/api/v1/services/psp/availability", PSP),
        row(M::GET, "/api/v1/services/psp/latency", PSP),
        row(M::GET, "/api/v1/services/shop/timeline", SHOP),
        row(M::GET, "/api/v1/services/shop/latency/series", SHOP),
        row(M::GET, "/api/v1/services/psp/timeline", PSP),
        row(M::GET, "/api/v1/services/psp/latency/series", PSP),
        row(M::GET, "/api/v1/agreements/shop-sla/report", SHOP),
        row(M::GET, "/api/v1/agreements/shop-sla/evidence", SHOP),
        row(M::GET, "/api/v1/agreements/shop-sla/periods/2020-01/revisions", SHOP),
        row(M::GET, "/api/v1/agreements/psp-uc/report", PSP),
        row(M::GET, "/api/v1/agreements/psp-uc/evidence", PSP),
        row(M::GET, "/api/v1/agreements/psp-uc/periods/2020-01/revisions", PSP),
        row(M::GET, "/api/v1/agreements/psp-ola/report", PSP_OLA),
        row(M::GET, "/api/v1/agreements/psp-ola/evidence", PSP_OLA),
        // Restating: a manager only; an unchanged period is 409 (nothing to store).
        Row {
            method: M::POST,
            path: "/api/v1/agreements/psp-uc/periods/2020-01/restate",
            body: r#"{"reason": "supplier review"}"#,
            expected: [401, 401, 403, 403, 403, 409, 403, 403, 401, 409],
        },
        Row {
            method: M::POST,
            path: "/api/v1/agreements/shop-sla/periods/2020-01/restate",
            body: r#"{"reason": "supplier review"}"#,
            expected: [401, 401, 403, 403, 403, 409, 403, 403, 401, 404],
        },
        row(M::GET, "/api/v1/agent/assignment", [401, 401, 401, 401, 401, 401, 401, 401, 200, 401]),
        // Maintenance (SPEC §11): writes need an operator or manager scoped to the services
        // named; the operator declares psp-chg first, so the managers' same id is 409, and
        // their cancels after the operator's are 409 too.
        row(M::GET, "/api/v1/maintenance", READ),
        Row {
            method: M::POST,
            path: "/api/v1/maintenance",
            body: r#"{"id": "psp-chg", "services": ["psp"], "start": "2999-01-01T00:00:00Z", "end": "2999-01-02T00:00:00Z", "reason": "card network upgrade"}"#,
            expected: [401, 401, 403, 403, 201, 409, 403, 403, 401, 409],
        },
        row(M::GET, "/api/v1/maintenance/psp-chg", PSP),
        Row {
            method: M::PATCH,
            path: "/api/v1/maintenance/psp-chg",
            body: r#"{"end": "2999-01-01T12:00:00Z"}"#,
            expected: [401, 401, 403, 403, 200, 200, 403, 403, 401, 200],
        },
        Row {
            method: M::DELETE,
            path: "/api/v1/maintenance/psp-chg",
            body: "",
            expected: [401, 401, 403, 403, 200, 409, 403, 403, 401, 409],
        },
        Row {
            method: M::POST,
            path: "/api/v1/ingest",
            body: r#"{"agent": "a1", "results": []}"#,
            expected: [401, 401, 401, 401, 401, 401, 401, 401, 200, 401],
        },
        row(M::GET, "/api/v1/no-such-thing", [404; 10]),
    ];
    let mut failures = Vec::new();
    for r in &table {
        for (who, expected) in Who::ALL.iter().zip(r.expected) {
            let a = call(&h.app, r.method.clone(), r.path, who.token().as_deref(), r.body).await;
            if a.status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {who:?}: {} (expected {expected}) {}",
                    r.method,
                    r.path,
                    a.status,
                    a.text()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every documented operation is in the table, so a new route needs its row.
    let doc = serde_json::to_value(probity_collector::api::openapi::document()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let covered = table.iter().any(|r| {
                r.method.as_str().eq_ignore_ascii_case(method) && (r.path == path || concrete_like(path, r.path))
            });
            assert!(covered, "{method} {path} has no row in the role table");
        }
    }
}

/// Whether a concrete path matches a document path's `{param}` segments.
fn concrete_like(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
}

#[tokio::test]
async fn a_scoped_reader_never_sees_another_agreements_id_in_any_answer() {
    let h = harness("");
    probity_collector::history::record_catalogue(&h.state, probity_collector::history::versions::Source::File)
        .await
        .unwrap();
    // Outages on both services at the same instants, so psp's are attributed to shop for
    // whoever may see shop.
    for (agent, probe) in [("a1", "db"), ("a2", "psp-api")] {
        let req = batch(agent, probe, 1, 300);
        let a =
            call(&h.app, Method::POST, "/api/v1/ingest", Some(&token(agent)), &serde_json::to_string(&req).unwrap())
                .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    }
    // A maintenance window on both services in the last hour (so it is in psp-uc's report
    // and bundle), and one on shop alone.
    let (start, end) = (probity_config::time::rfc3339(now_ms() - 1_800_000), probity_config::time::rfc3339(now_ms()));
    for (id, services) in [("both-chg", r#"["psp", "shop"]"#), ("shop-chg", r#"["shop"]"#)] {
        let body = format!(
            r#"{{"id": "{id}", "services": {services}, "start": "{start}", "end": "{end}", "reason": "upgrade"}}"#
        );
        let a = call(&h.app, Method::POST, "/api/v1/maintenance", Some(OPERATOR), &body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    }
    // What an unscoped reader sees, so the scoped answers below are filtered, not empty.
    let full = get(&h.app, "/api/v1/gaps", Some(READER)).await.text();
    assert!(full.contains("shop-ola") && full.contains("psp-uc"), "{full}");
    let full: serde_json::Value =
        serde_json::from_slice(&get(&h.app, "/api/v1/agreements/psp-uc/report", Some(READER)).await.body).unwrap();
    assert_eq!(full["attributed_downtime"][0]["service"], "shop", "{full:.300}");

    let read = [
        "/api/v1/services",
        "/api/v1/compliance",
        "/api/v1/compliance?period=2020-01",
        "/api/v1/gaps",
        "/api/v1/agents",
        "/api/v1/catalogue/versions",
        "/api/v1/catalogue/versions/1",
        "/api/v1/services/psp/availability",
        "/api/v1/services/psp/latency",
        "/api/v1/services/psp/timeline",
        "/api/v1/services/psp/latency/series",
        "/api/v1/agreements/psp-uc/report",
        "/api/v1/agreements/psp-uc/report?period=2020-01",
        "/api/v1/agreements/psp-uc/periods/2020-01/revisions",
        "/api/v1/maintenance",
        "/api/v1/maintenance?include_cancelled=true",
        "/api/v1/maintenance/both-chg",
        "/",
        "/dashboard.js",
    ];
    let mut seen = Vec::new();
    for path in read {
        let a = get(&h.app, path, Some(ACME)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
        seen.push((path.to_string(), a.text()));
    }
    // The running period's bundle and a closed one's (with revisions.json and
    // catalogue.json), each still verifying offline.
    for (query, label) in [("", "evidence"), ("?period=2020-01", "closed evidence")] {
        let a = get(&h.app, &format!("/api/v1/agreements/psp-uc/evidence{query}"), Some(ACME)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let path = h._dir.path().join("bundle.zip");
        std::fs::write(&path, &a.body).unwrap();
        let (report, ok) = probity_collector::cli::verify_evidence(&path, None);
        assert!(ok, "{label}: {report}");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(a.body)).unwrap();
        for i in 0..zip.len() {
            let mut file = zip.by_index(i).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut file, &mut text).unwrap();
            seen.push((format!("{label} {}", file.name().unwrap()), text));
        }
    }
    assert!(seen.iter().any(|(name, _)| name == "closed evidence catalogue.json"), "a closed period's bundle");
    assert!(seen.iter().any(|(name, text)| name == "evidence maintenance.csv" && text.contains("both-chg")));
    assert!(seen.iter().any(|(name, text)| name == "evidence results.csv" && text.contains(",psp-api,")));
    // None of shop, shop-sla, psp-ola, shop's probes or the agents that run only them.
    for (name, text) in &seen {
        for hidden in ["shop", "psp-ola", "\"web\"", "\"db\"", ",web,", ",db,", "\"a1\"", "\"a0\"", "\"a3\"", ",a1,"] {
            assert!(!text.contains(hidden), "{name} shows {hidden}: {text:.2000}");
        }
    }
    let agents = get(&h.app, "/api/v1/agents", Some(ACME)).await;
    let agents: serde_json::Value = serde_json::from_slice(&agents.body).unwrap();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 1, "only a2 runs psp-api: {agents}");
    let windows: serde_json::Value =
        serde_json::from_slice(&get(&h.app, "/api/v1/maintenance", Some(ACME)).await.body).unwrap();
    assert_eq!(windows["windows"].as_array().unwrap().len(), 1, "{windows}");
    assert_eq!(windows["windows"][0]["services"], serde_json::json!(["psp"]), "{windows}");
    assert_eq!(get(&h.app, "/api/v1/maintenance/shop-chg", Some(ACME)).await.status, StatusCode::NOT_FOUND);
    let compliance: serde_json::Value =
        serde_json::from_slice(&get(&h.app, "/api/v1/compliance", Some(ACME)).await.body).unwrap();
    assert_eq!(compliance["agreements"].as_array().unwrap().len(), 1, "{compliance}");
    // Hidden ids answer exactly as ids that name nothing.
    for (hidden, unknown) in [
        ("/api/v1/agreements/psp-ola/report", "/api/v1/agreements/psp-olb/report"),
        ("/api/v1/services/shop/availability", "/api/v1/services/shoq/availability"),
    ] {
        let (a, b) = (get(&h.app, hidden, Some(ACME)).await, get(&h.app, unknown, Some(ACME)).await);
        assert_eq!((a.status, a.error().replace("psp-ola", "psp-olb").replace("shop", "shoq")), (b.status, b.error()));
    }
}
