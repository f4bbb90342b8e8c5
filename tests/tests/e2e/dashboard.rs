//! The dashboard in real headless Chromium, driven through chromedriver (WebDriver, with
//! fantoccini) against a real collector: an agent whose target is stopped (an outage, the
//! service down) and last month's results with an outage that breaches the SLA. The
//! overview shows the API's figures, the period picker changes the URL and the figures, a
//! 390 px viewport scrolls no sideways and keeps the verdict in view, and an evidence
//! bundle's `report.html` shows verdict and coverage. With `PROBITY_SCREENSHOTS=DIR`, the
//! test saves its screenshots there (README: "Screenshots").

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use probity_config::time::rfc3339;
use probity_tests::{Agent, Collector, HttpTarget, wait_for};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
const ZONE: &str = "America/New_York";
const LIVE: (&str, &str) = ("edge-1", "probity_e2e-dashboard-edge-1");
const HIST: (&str, &str) = ("hist", "probity_e2e-dashboard-hist");

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shop's HTTP probe every second on both agents (quorum 1), an SLA that a little
/// monitoring can breach (min_coverage 0.001 %) and an OLA with the default 90 %, both per
/// month in New York's zone, settling for 70 days: last month is not sealed before the
/// test's late results for it arrive (a closed period keeps its sealed figures).
fn config(target: &HttpTarget) -> String {
    let mut s = String::from("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n");
    for (id, token) in [LIVE, HIST] {
        s += &format!("[[agents]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex(probity_config::token_sha256(token)));
    }
    s += &format!(
        r#"[calendars.ny]
timezone = "{ZONE}"
hours = ["mon-sun 00:00-24:00"]

[[services]]
id = "shop"
name = "Shop"
owner = "web-team"
  [[services.probes]]
  id = "shop-http"
  kind = "http"
  url = "http://{addr}/health"
  interval = "1s"
  timeout = "1s"
  quorum = 1

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
counterparty = "customers"
calendar = "ny"
period = "month"
availability = 99.9
min_coverage = 0.001
settle = "70d"

[[agreements]]
id = "shop-ola"
kind = "ola"
service = "shop"
counterparty = "ops"
calendar = "ny"
period = "month"
availability = 99.0
settle = "70d"
"#,
        addr = target.addr
    );
    s
}

/// The month label `n` months from the current UTC month, as the page's picker counts.
fn month_label(n: i32) -> String {
    let today = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
    let i = i32::from(today.year()) * 12 + i32::from(today.month()) - 1 + n;
    format!("{}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1)
}

/// Day 10 of `label`'s month, 10:00 in New York, in Unix ms.
fn tenth_at_ten(label: &str) -> i64 {
    let (y, m) = label.split_once('-').unwrap();
    let date = Date::new(y.parse().unwrap(), m.parse().unwrap(), 10).unwrap();
    date.at(10, 0, 0, 0).in_tz(ZONE).unwrap().timestamp().as_millisecond()
}

/// What the page shows for an API figure (`dashboard.js`: `pct`, `dur`, `verdictText`).
fn pct(v: &Value) -> String {
    match v.as_f64() {
        None => "n/a".into(),
        Some(v) => {
            let s = format!("{v:.6}");
            format!("{}\u{a0}%", &s[..s.find('.').unwrap() + 4])
        }
    }
}

fn dur(v: &Value) -> String {
    let Some(seconds) = v.as_f64() else { return "n/a".into() };
    let mut t = seconds.abs().round() as i64;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if t >= size {
            parts.push(format!("{}{unit}", t / size));
            t %= size;
        }
    }
    if t > 0 || parts.is_empty() {
        parts.push(format!("{t}s"));
    }
    let sign = if seconds < 0.0 && seconds.abs().round() > 0.0 { "-" } else { "" };
    format!("{sign}{}", parts.join(" "))
}

fn verdict_text(v: &Value) -> String {
    v.as_str().unwrap_or("insufficient_data").replace("insufficient_data", "insufficient data")
}

/// An instant as the page shows it in `zone`: `2026-11-10 10:00:00 -05:00`.
fn local(iso: &str, zone: &str) -> String {
    let t: jiff::Timestamp = iso.parse().unwrap();
    let z = t.in_tz(zone).unwrap();
    let ms = t.subsec_millisecond();
    let frac = if ms == 0 { String::new() } else { format!(".{ms:03}") };
    format!("{}{frac} {}", z.strftime("%Y-%m-%d %H:%M:%S"), z.strftime("%:z"))
}

/// chromedriver on a port it picks itself (`--port=0`), read from what it prints.
struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver: {e}; this test needs apt-get install -y chromium chromium-driver (.ci/run installs them)")
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("started successfully on port ").nth(1).map(|p| p.trim_end_matches('.').parse()))
            .expect("chromedriver printed no port")
            .unwrap();
        // Keep reading so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Chromedriver { child, port }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session, driven from a plain test thread.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    _driver: Chromedriver,
}

impl Browser {
    fn start() -> Browser {
        let driver = Chromedriver::start();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut caps = serde_json::Map::new();
        let mut options = json!({
            // As root (CI), Chromium needs --no-sandbox.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        caps.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = runtime.block_on(async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
                .unwrap_or_else(|e| panic!("a Chromium session through chromedriver: {e}"))
        });
        Browser { runtime, client: Some(client), _driver: driver }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    fn eval(&self, script: &str) -> Value {
        self.runtime.block_on(self.client().execute(script, vec![])).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    fn click(&self, css: &str) {
        self.runtime
            .block_on(async { self.client().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    fn resize(&self, width: u32, height: u32) {
        self.runtime.block_on(self.client().set_window_size(width, height)).unwrap();
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("PROBITY_SCREENSHOTS") else { return };
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        // Relative to the workspace root, where README's command runs.
        let dir = probity_tests::workspace_root().join(PathBuf::from(dir));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }

    /// Waits until the page has rendered the view its URL names (`main[data-route]` is the
    /// hash it rendered, `data-state` is `ready`); returns the hash.
    fn wait_rendered(&self) -> String {
        let script = "const v = document.getElementById('view'); \
                      return v.dataset.route === location.hash && v.dataset.state !== 'loading' \
                        ? [v.dataset.state, location.hash, document.getElementById('error').textContent] : null;";
        let done = wait_for("the dashboard to render its view", WAIT, || {
            let v = self.eval(script);
            (!v.is_null()).then_some(v)
        });
        assert_eq!(done[0], "ready", "the page failed: {}", done[2]);
        done[1].as_str().unwrap().to_string()
    }

    /// The text of `css` on the page (null when it is absent).
    fn text(&self, css: &str) -> Value {
        self.eval(&format!("const e = document.querySelector({css:?}); return e ? e.textContent : null;"))
    }

    fn no_horizontal_scroll(&self) -> (i64, i64) {
        let v = self.eval("return [document.documentElement.scrollWidth, window.innerWidth];");
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
    }
}

/// The overview's row of `agreement` against the API's compliance line, field by field.
fn assert_row_shows(browser: &Browser, line: &Value) {
    let id = line["agreement"].as_str().unwrap();
    let field = |f: &str| browser.text(&format!("tr[data-agreement=\"{id}\"] [data-field=\"{f}\"]"));
    let budget_share = match (line["error_budget_remaining_seconds"].as_f64(), line["error_budget_seconds"].as_f64()) {
        (Some(r), Some(b)) if b > 0.0 => json!(100.0 * r / b),
        _ => Value::Null,
    };
    for (f, expected) in [
        ("verdict", verdict_text(&line["verdict"])),
        ("availability", pct(&line["availability_percent"])),
        ("target", pct(&line["target_percent"])),
        ("coverage", pct(&line["coverage_percent"])),
        ("unknown", dur(&line["unknown_seconds"])),
        ("budget", dur(&line["error_budget_remaining_seconds"])),
        ("budget_percent", pct(&budget_share)),
    ] {
        assert_eq!(field(f), json!(expected), "{id}: {f} (API line {line})");
    }
}

#[test]
fn the_dashboard_shows_the_apis_figures_follows_the_period_picker_and_fits_390_px() {
    let target = HttpTarget::start(200);
    let collector = Collector::start(&config(&target));
    // Last month (in the page's counting): an hour of results every second from `hist`,
    // down 10:10-10:20 New York time (the last view lasts two intervals: 3001 s up of
    // 3601 s known): 83.337 % against 99.9, a breach on 0.1 % coverage.
    let last_month = month_label(-1);
    let t = tenth_at_ten(&last_month);
    let results: Vec<Value> = (0..3600)
        .map(|i| {
            let down = (600..1200).contains(&i);
            let mut r =
                json!({"seq": i + 1, "probe": "shop-http", "at": t + i * 1000, "duration_us": 20_000 + i, "ok": !down});
            if down {
                r["error"] = json!({"kind": "timeout", "message": "no answer within 1s"});
            }
            r
        })
        .collect();
    for batch in results.chunks(900) {
        let reply = collector.post_json("/api/v1/ingest", HIST.1, &json!({"agent": HIST.0, "results": batch}));
        assert_eq!(reply.json()["accepted"], 900, "{}", reply.text());
    }

    // Now: the live agent sees the target up, then the target stops: an outage, ongoing.
    let _agent = Agent::start(LIVE.0, LIVE.1, &collector.url(""));
    let state = |c: &Collector| c.get("/api/v1/services").json()["services"][0]["state"].as_str().unwrap().to_string();
    wait_for("shop up", WAIT, || (state(&collector) == "up").then_some(()));
    drop(target);
    wait_for("shop down once its target stopped", WAIT, || (state(&collector) == "down").then_some(()));
    let ongoing = wait_for("an ongoing outage in the SLA's running period", WAIT, || {
        let r = collector.get("/api/v1/agreements/shop-sla/report").json();
        let o = r["outages"].as_array().and_then(|o| o.last()).cloned()?;
        (o["ongoing"] == true && r["verdict"] == "breached").then_some(o)
    });
    assert!(ongoing["reasons"]["connect"].as_u64().is_some(), "a stopped target refuses connections: {ongoing}");

    let browser = Browser::start();
    browser.goto(&collector.url("/"));
    assert_eq!(browser.wait_rendered(), "", "the overview without a period is the bare page");
    // Stable while the outage runs: the state and since, the verdicts and targets.
    let services = collector.get("/api/v1/services").json();
    let shop = &services["services"][0];
    assert_eq!(shop["state"], "down");
    assert_eq!(browser.text("tr[data-service=\"shop\"] [data-field=\"state\"]"), shop["state"]);
    assert_eq!(
        browser.text("tr[data-service=\"shop\"] [data-field=\"since\"]"),
        json!(local(shop["since"].as_str().unwrap(), ZONE)),
        "since, in the first agreement's zone with its offset"
    );
    let current = collector.get("/api/v1/compliance").json();
    for line in current["agreements"].as_array().unwrap() {
        let id = line["agreement"].as_str().unwrap();
        let shown = browser.text(&format!("tr[data-agreement=\"{id}\"] [data-field=\"verdict\"]"));
        assert_eq!(shown, json!(verdict_text(&line["verdict"])), "{id}");
        let shown = browser.text(&format!("tr[data-agreement=\"{id}\"] [data-field=\"target\"]"));
        assert_eq!(shown, json!(pct(&line["target_percent"])), "{id}");
    }
    assert_eq!(browser.text("tr[data-agreement=\"shop-sla\"] [data-field=\"verdict\"]"), json!("breached"));
    assert_eq!(browser.text("tr[data-agreement=\"shop-ola\"] [data-field=\"verdict\"]"), json!("insufficient data"));

    // The picker: one month back is last month, closed, with the hour of results.
    browser.click("#period-prev");
    let hash = browser.wait_rendered();
    assert_eq!(hash, format!("#period={last_month}"));
    assert_eq!(browser.text("#period-label"), json!(last_month));
    let past = collector.get(&format!("/api/v1/compliance?period={last_month}")).json();
    for line in past["agreements"].as_array().unwrap() {
        assert_row_shows(&browser, line);
    }
    let sla = past["agreements"].as_array().unwrap().iter().find(|l| l["agreement"] == "shop-sla").unwrap();
    assert_eq!(
        (sla["verdict"].as_str(), sla["availability_percent"].as_f64()),
        (Some("breached"), Some(83.337961)),
        "{sla}"
    );
    assert_eq!(browser.text("tr[data-agreement=\"shop-sla\"] [data-field=\"availability\"]"), json!("83.337\u{a0}%"));
    assert_eq!(browser.text("[data-field=\"compliance_rate\"]"), json!(pct(&past["compliance_rate_percent"])));
    browser.screenshot("dashboard-overview.png");

    // Once more back: a month before any data, never green.
    browser.click("#period-prev");
    let before = month_label(-2);
    assert_eq!(browser.wait_rendered(), format!("#period={before}"));
    let empty = collector.get(&format!("/api/v1/compliance?period={before}")).json();
    for line in empty["agreements"].as_array().unwrap() {
        assert_eq!(line["verdict"], "insufficient_data", "{line}");
        assert_row_shows(&browser, line);
    }
    assert_eq!(browser.text("tr[data-agreement=\"shop-sla\"] [data-field=\"availability\"]"), json!("n/a"));
    browser.click("#period-next");
    assert_eq!(browser.wait_rendered(), format!("#period={last_month}"));

    // The agreement page of last month: its timeline bar has the outage, hover text in
    // New York time, the outage listed with its reason.
    browser.goto(&collector.url(&format!("/#page=agreement&id=shop-sla&period={last_month}")));
    browser.wait_rendered();
    assert_eq!(browser.text("[data-field=\"verdict\"]"), json!("breached"));
    assert_eq!(browser.text(".tiles [data-field=\"availability\"]"), json!(pct(&sla["availability_percent"])));
    let down = browser
        .eval("return [...document.querySelectorAll('.bar rect[data-state=down] title')].map(t => t.textContent);");
    let start = rfc3339(t + 600_000);
    assert_eq!(down.as_array().unwrap().len(), 1, "{down}");
    let hover = down[0].as_str().unwrap();
    assert!(hover.starts_with(&format!("down: {} – ", local(&start, ZONE))), "{hover}");
    assert!(hover.contains("reasons: timeout: 1"), "{hover}");
    assert_eq!(browser.text("tr.outage td[data-label=\"start\"]"), json!(local(&start, ZONE)));
    assert!(browser.text("svg.chart path.p50").is_string(), "the latency chart draws the hour of results");
    browser.screenshot("dashboard-agreement.png");

    // 390 px: no horizontal scroll on any page, and the verdict in view.
    browser.resize(390, 844);
    for path in [
        format!("/#period={last_month}"),
        format!("/#page=agreement&id=shop-sla&period={last_month}"),
        "/#page=service&id=shop".to_string(),
        "/#page=wall".to_string(),
    ] {
        browser.goto(&collector.url(&path));
        browser.wait_rendered();
        let (scroll, inner) = browser.no_horizontal_scroll();
        assert!(inner <= 400, "the window is {inner} px wide, not a phone's");
        assert!(scroll <= inner, "{path}: scrollWidth {scroll} > innerWidth {inner}");
        if path.starts_with("/#period") {
            browser.screenshot("dashboard-390px.png");
            let verdict = browser.eval(
                "const r = document.querySelector('tr[data-agreement=\"shop-sla\"] [data-field=verdict]').getBoundingClientRect(); \
                 return [r.left, r.right, r.width, window.innerWidth];",
            );
            let (left, right, width) =
                (verdict[0].as_f64().unwrap(), verdict[1].as_f64().unwrap(), verdict[2].as_f64().unwrap());
            assert!(
                left >= 0.0 && width > 0.0 && right <= verdict[3].as_f64().unwrap(),
                "verdict out of view: {verdict}"
            );
        }
    }
    browser.resize(1280, 1000);
    browser.goto(&collector.url("/#page=wall"));
    browser.wait_rendered();
    assert_eq!(browser.text(".wall a[data-service=\"shop\"] .value"), json!("down"));
    browser.screenshot("dashboard-wall.png");

    // The evidence bundle's report.html, opened from disk: verdict and coverage shown.
    let bundle = collector.get(&format!("/api/v1/agreements/shop-sla/evidence?period={last_month}"));
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bundle.body)).unwrap();
    let mut html = String::new();
    zip.by_name("report.html").unwrap().read_to_string(&mut html).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = probity_tests::write_file(dir.path(), "report.html", html.as_bytes());
    browser.goto(&format!("file://{}", file.display()));
    let shown = browser.eval("return document.body.innerText;");
    let shown = shown.as_str().unwrap().to_lowercase();
    assert!(
        shown.contains("breached") && shown.contains("coverage"),
        "report.html shows no verdict or coverage: {shown}"
    );
    browser.screenshot("evidence-report.png");
}
