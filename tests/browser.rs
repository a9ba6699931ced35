//! Browser tests: Debian's `chromium`, headless, driven through `chromedriver` with
//! `fantoccini`, against the example server on `127.0.0.1:0`: its SPA (`examples/spa`)
//! and, with JavaScript turned off in Chromium, its server-rendered pages.
//!
//! Needs `chromium` and `chromedriver` on `PATH` (Debian: `apt-get install chromium
//! chromium-driver`). Without them each test prints `SKIPPED: …` to stderr and passes,
//! except under `CI=true`, where a missing browser is a failure.
//!
//! Every test starts its own chromedriver (on a free loopback port, in its own process
//! group so that the browser dies with it), a fresh Chromium profile and its own example
//! server with short timeouts; a test of two devices starts a second chromedriver and
//! profile on the same server. The tests run one at a time: they measure seconds.
//! Screenshots go to `target/browser-artifacts/` (with the server and chromedriver logs);
//! the ones the README shows also to `docs/screenshots/`, when missing there or when
//! `JWT_SESSION_UPDATE_SCREENSHOTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
use support::server_binary;
use support::target_dir;

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The example server's session cookie with plain-http (development) cookies.
const COOKIE_NAME: &str = "session";

/// One test at a time: Chromium is heavy and the scenarios count seconds.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// Tools, processes and paths
// ---------------------------------------------------------------------------------------

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `(chromium, chromedriver)`, or `None` (after a loud `SKIPPED`) when one is missing
/// outside CI. Under `CI=true` a missing tool fails the test.
fn browser_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = find_in_path("chromium");
    let driver = find_in_path("chromedriver");
    if let (Some(chromium), Some(driver)) = (&chromium, &driver) {
        return Some((chromium.clone(), driver.clone()));
    }
    let missing: Vec<&str> = [("chromium", &chromium), ("chromedriver", &driver)]
        .iter()
        .filter(|(_, found)| found.is_none())
        .map(|(name, _)| *name)
        .collect();
    let message = format!(
        "browser test `{test}` needs {} on PATH (Debian: apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {message}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n**********\nSKIPPED: {message}\n**********\n"
    );
    None
}

fn artifacts_dir() -> PathBuf {
    let dir = target_dir().join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
    dir
}

/// A free loopback port: bind port 0, read it, let it go.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Kills a child process when dropped; with `group`, its whole process group (chromedriver
/// and the Chromium it started).
struct KillOnDrop {
    child: Child,
    group: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.group {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_file(name: &str) -> File {
    File::create(artifacts_dir().join(name)).expect("create a log file in target/browser-artifacts")
}

/// The example server as a child process on `127.0.0.1:0`, with `env` on top of a clean
/// environment (the repo's development keys, a fresh data folder).
struct Server {
    base: String,
    _process: KillOnDrop,
    _data: TempDir,
}

fn start_server(test: &str, env: &[(&str, &str)]) -> Server {
    let data = TempDir::new().expect("temp data dir");
    let mut cmd = Command::new(server_binary());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JWT_SESSION_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("JWT_SESSION_ADDR", "127.0.0.1:0")
        .env(
            "JWT_SESSION_KEYS",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("keys"),
        )
        .env("JWT_SESSION_DATA", data.path())
        .env("RUST_LOG", "info,jwt_session=debug")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&format!("{test}-server.log")));
    let mut child = cmd.spawn().expect("start the example server");
    let stdout = child.stdout.take().expect("server stdout");
    let process = KillOnDrop {
        child,
        group: false,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the server never writes into a closed pipe.
        let _ = reader.read_to_end(&mut Vec::new());
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server printed no `listening on` line within 30 s");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line from the server: {line:?} \
                 (see target/browser-artifacts/{test}-server.log)"
            )
        })
        .to_owned();
    Server {
        base,
        _process: process,
        _data: data,
    }
}

/// chromedriver on a free loopback port, in its own process group.
fn start_chromedriver(test: &str, chromedriver: &Path) -> (KillOnDrop, String) {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log_file(&format!("{test}-chromedriver.log")))
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let guard = KillOnDrop { child, group: true };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, format!("http://127.0.0.1:{port}"))
}

// ---------------------------------------------------------------------------------------
// The harness: one server, one chromedriver, one browser
// ---------------------------------------------------------------------------------------

/// How a test's browser differs from the default one.
#[derive(Debug, Default, Clone, Copy)]
struct BrowserOptions {
    /// JavaScript off, by Chromium's content setting (as a user turns it off); WebDriver
    /// can still run its own scripts in the page.
    no_javascript: bool,
    /// A `User-Agent` other than this Chromium's (another "device").
    user_agent: Option<&'static str>,
}

/// Drop order is field order: the WebDriver client, then chromedriver with its browser,
/// then the profile directory, then the server (a second browser on the same server holds
/// none).
struct Harness {
    name: &'static str,
    client: Client,
    base: String,
    _driver: KillOnDrop,
    _profile: TempDir,
    _server: Option<Server>,
}

impl Harness {
    /// Starts everything, or `None` when the browser is not installed (outside CI).
    async fn start(name: &'static str, env: &[(&str, &str)]) -> Option<Self> {
        Self::start_with(name, env, BrowserOptions::default()).await
    }

    /// [`Harness::start`], with a browser set up by `options`.
    async fn start_with(
        name: &'static str,
        env: &[(&str, &str)],
        options: BrowserOptions,
    ) -> Option<Self> {
        let (chromium, chromedriver) = browser_tools(name)?;
        let server = start_server(name, env);
        let base = server.base.clone();
        Some(Self::launch(name, &chromium, &chromedriver, base, Some(server), options).await)
    }

    /// Another browser, with its own chromedriver and profile (another device, as far as
    /// the server can tell), on the server of `self`.
    async fn second_browser(&self, name: &'static str, options: BrowserOptions) -> Self {
        let (chromium, chromedriver) =
            browser_tools(name).expect("the first browser found the tools");
        Self::launch(
            name,
            &chromium,
            &chromedriver,
            self.base.clone(),
            None,
            options,
        )
        .await
    }

    async fn launch(
        name: &'static str,
        chromium: &Path,
        chromedriver: &Path,
        base: String,
        server: Option<Server>,
        options: BrowserOptions,
    ) -> Self {
        let (driver, driver_url) = start_chromedriver(name, chromedriver);
        let profile = TempDir::new().expect("temp Chromium profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1000,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if let Some(agent) = options.user_agent {
            args.push(format!("--user-agent={agent}"));
        }
        // 2 = block: the setting behind chrome://settings/content/javascript.
        let prefs = if options.no_javascript {
            json!({ "profile.managed_default_content_settings.javascript": 2 })
        } else {
            json!({})
        };
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": args,
                "prefs": prefs,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver_url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver session with {}: {e}", chromium.display()));
        Self {
            name,
            client,
            base,
            _driver: driver,
            _profile: profile,
            _server: server,
        }
    }

    /// Closes the browser session (the guards kill whatever is left).
    async fn finish(self) {
        let Self { client, .. } = self;
        let _ = client.close().await;
    }

    async fn goto(&self, path_and_query: &str) {
        self.client
            .goto(&format!("{}{path_and_query}", self.base))
            .await
            .expect("navigate");
    }

    /// Waits until the page at `path_and_query` (e.g. `/login?next=%2Faccount`) has loaded:
    /// after a click on a form's button, the navigation it starts.
    async fn wait_location(&self, path_and_query: &str) {
        let literal = json!(path_and_query).to_string();
        let condition = format!(
            "location.pathname + location.search === {literal} \
             && document.readyState === 'complete'"
        );
        self.wait_until(
            &format!("the page {path_and_query}"),
            &condition,
            Duration::from_secs(10),
        )
        .await;
    }

    /// The page's path and query.
    async fn current_path(&self) -> String {
        let path = self.js("return location.pathname + location.search;").await;
        path.as_str().expect("a path").to_owned()
    }

    /// Runs `script` (a function body; may return a promise) in the page.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls the JavaScript expression `condition` until it is truthy.
    async fn wait_until(&self, what: &str, condition: &str, timeout: Duration) {
        let script = format!("return Boolean({condition});");
        let start = Instant::now();
        loop {
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if start.elapsed() > timeout {
                self.save_failure().await;
                panic!(
                    "[{}] timed out after {timeout:?} waiting for {what} ({condition}); \
                     see target/browser-artifacts/{}-failure.png",
                    self.name, self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn save_failure(&self) {
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(
                artifacts_dir().join(format!("{}-failure.png", self.name)),
                png,
            );
        }
        if let Ok(log) = self
            .client
            .execute("return JSON.stringify(window.__fetchLog || null);", vec![])
            .await
        {
            eprintln!("[{}] fetch log: {log}", self.name);
        }
    }

    async fn visible(&self, id: &str) -> bool {
        let script = format!(
            "const e = document.getElementById('{id}'); return !!e && !e.closest('.hidden');"
        );
        self.js(&script).await == Value::Bool(true)
    }

    async fn wait_visible(&self, id: &str, timeout: Duration) {
        let condition = format!(
            "document.getElementById('{id}') && !document.getElementById('{id}').closest('.hidden')"
        );
        self.wait_until(&format!("#{id} to show"), &condition, timeout)
            .await;
    }

    async fn text(&self, id: &str) -> String {
        self.client
            .find(Locator::Id(id))
            .await
            .expect("element")
            .text()
            .await
            .expect("element text")
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.expect("field");
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Ticks or unticks the checkbox `id` (by clicking it, as a user would).
    async fn set_checked(&self, id: &str, on: bool) {
        let checked = self
            .js(&format!("return document.getElementById('{id}').checked;"))
            .await;
        if checked != Value::Bool(on) {
            self.click(&format!("#{id}")).await;
        }
        let checked = self
            .js(&format!("return document.getElementById('{id}').checked;"))
            .await;
        assert_eq!(checked, Value::Bool(on), "#{id} checked");
    }

    /// Log in through the form (without "remember me") and wait for the protected page.
    async fn log_in(&self, user: &str, password: &str) {
        self.log_in_with(user, password, false).await;
    }

    /// Log in through the form, with the "remember me" box ticked or not, and wait for
    /// the protected page.
    async fn log_in_with(&self, user: &str, password: &str, remember: bool) {
        self.wait_visible("login-view", Duration::from_secs(10))
            .await;
        self.type_into("username", user).await;
        self.type_into("password", password).await;
        self.set_checked("remember", remember).await;
        self.click("#login-button").await;
        self.wait_visible("app-view", Duration::from_secs(10)).await;
        let shown = format!("document.getElementById('user').textContent === '{user}'");
        self.wait_until("the user's name", &shown, Duration::from_secs(5))
            .await;
    }

    /// The session cookie as the browser holds it (WebDriver sees HttpOnly cookies).
    async fn session_cookie(&self) -> Option<fantoccini::cookies::Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("get all cookies")
            .into_iter()
            .find(|c| c.name() == COOKIE_NAME && !c.value().is_empty())
    }

    /// Wraps `window.fetch` so the test can count every request the page makes
    /// (path, method, passive header, status). Survives until the next navigation.
    async fn record_fetches(&self) {
        self.js(r#"
            if (!window.__fetchLog) {
              window.__fetchLog = [];
              const original = window.fetch.bind(window);
              window.fetch = async (input, init = {}) => {
                const isRequest = input instanceof Request;
                const entry = {
                  path: new URL(isRequest ? input.url : String(input), location.href).pathname,
                  method: (init.method || (isRequest ? input.method : "GET")).toUpperCase(),
                  passive: new Headers(init.headers || undefined).get("x-session-passive") === "1",
                  status: null,
                };
                window.__fetchLog.push(entry);
                try {
                  const res = await original(input, init);
                  entry.status = res.status;
                  return res;
                } catch (e) {
                  entry.status = -1;
                  throw e;
                }
              };
            }
            "#)
            .await;
    }

    async fn fetch_log(&self) -> Vec<Value> {
        match self.js("return window.__fetchLog || [];").await {
            Value::Array(entries) => entries,
            other => panic!("fetch log is not an array: {other}"),
        }
    }

    async fn login_redirects(&self) -> i64 {
        self.js("return window.__loginRedirects;")
            .await
            .as_i64()
            .expect("window.__loginRedirects is a number")
    }

    /// A plain `fetch` from the page: `[status, JSON body or null]`.
    async fn page_fetch(&self, path: &str, init: &str) -> (u64, Value) {
        let script = format!(
            "return fetch('{path}', {init}).then(async (r) => \
             [r.status, await r.json().catch(() => null)]);"
        );
        let result = self.js(&script).await;
        (
            result[0].as_u64().expect("status"),
            result.get(1).cloned().unwrap_or(Value::Null),
        )
    }

    /// Saves a screenshot to `target/browser-artifacts/` and, for the README, to
    /// `docs/screenshots/` (when missing there, or with `JWT_SESSION_UPDATE_SCREENSHOTS=1`).
    async fn screenshot(&self, file: &str) {
        let png = self.artifact_screenshot(file).await;
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        let target = docs.join(file);
        let update = std::env::var("JWT_SESSION_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
        if update || !target.exists() {
            std::fs::create_dir_all(&docs).expect("create docs/screenshots");
            std::fs::write(&target, &png).expect("write docs screenshot");
        }
    }

    /// Saves a screenshot to `target/browser-artifacts/` only (not one the README shows).
    async fn artifact_screenshot(&self, file: &str) -> Vec<u8> {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(artifacts_dir().join(file), &png).expect("write screenshot");
        png
    }
}

fn count(log: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    log.iter().filter(|e| pred(e)).count()
}

/// The statuses of the `method` requests to `path` in a fetch log, in order.
fn statuses(log: &[Value], method: &str, path: &str) -> Vec<Value> {
    log.iter()
        .filter(|e| e["method"] == method && e["path"] == path)
        .map(|e| e["status"].clone())
        .collect()
}

/// Seconds since the Unix epoch, by the clock the server and the browser share.
fn unix_now() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(now.as_secs()).expect("seconds fit an i64")
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// Log in through the form, see the protected page with the user name, add a note (a
/// CSRF-protected POST made by the client), and check that scripts cannot read the cookie.
#[tokio::test]
async fn login_shows_the_protected_page_and_the_cookie_is_http_only() {
    let _serial = SERIAL.lock().await;
    let Some(h) = Harness::start("login", &[("JWT_SESSION_IDLE", "10m")]).await else {
        return;
    };
    h.goto("/").await;

    // A wrong password stays on the login view with a message.
    h.wait_visible("login-view", Duration::from_secs(10)).await;
    h.type_into("password", "not-the-password").await;
    h.click("#login-button").await;
    h.wait_until(
        "the wrong-password message",
        "document.getElementById('login-error').textContent.includes('Wrong')",
        Duration::from_secs(5),
    )
    .await;
    assert!(!h.visible("app-view").await);

    h.log_in("alice", "wonderland").await;
    assert_eq!(h.text("user").await, "alice");
    h.wait_until(
        "the countdown",
        "/^\\d+:\\d\\d min$/.test(document.getElementById('countdown').textContent)",
        Duration::from_secs(5),
    )
    .await;

    // The notes form: a POST that needs X-CSRF-Token, sent by session.fetch.
    for note in ["Buy milk", "Rotate the signing key"] {
        h.type_into("note-text", note).await;
        h.click("#note-button").await;
        let listed = format!(
            "[...document.querySelectorAll('#notes li')].some((li) => li.textContent === '{note}')"
        );
        h.wait_until("the new note", &listed, Duration::from_secs(5))
            .await;
    }
    assert_eq!(h.text("note-error").await, "");

    // HttpOnly: the browser holds the cookie, scripts do not see it.
    let cookie = h.session_cookie().await.expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true), "session cookie is HttpOnly");
    assert_eq!(cookie.value().split('.').count(), 3, "the cookie is a JWT");
    let visible = h.js("return document.cookie;").await;
    let visible = visible.as_str().expect("document.cookie is a string");
    assert!(
        !visible.contains(&format!("{COOKIE_NAME}=")) && !visible.contains(cookie.value()),
        "document.cookie must not expose the session: {visible:?}"
    );

    h.screenshot("logged-in.png").await;

    // A reload finds the session again through GET /session.
    h.goto("/").await;
    h.wait_visible("app-view", Duration::from_secs(10)).await;
    assert_eq!(h.text("user").await, "alice");
    assert_eq!(h.login_redirects().await, 0);
    h.finish().await;
}

/// The user clicks and types every second, touching nothing that calls the server, for
/// twice the idle timeout: the client's auto-extend refreshes near each deadline, the
/// cookie is renewed, and the user stays signed in.
#[tokio::test]
async fn cookie_is_renewed_while_the_user_clicks_around() {
    let _serial = SERIAL.lock().await;
    let env = [
        ("JWT_SESSION_IDLE", "4s"),
        ("JWT_SESSION_REISSUE_AFTER", "1s"),
        ("JWT_SESSION_LEEWAY", "0s"),
    ];
    let Some(h) = Harness::start("renewal", &env).await else {
        return;
    };
    h.goto("/?warn=2&poll=0").await;
    h.record_fetches().await;
    h.log_in("alice", "wonderland").await;
    let first = h.session_cookie().await.expect("a session cookie");

    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if round % 2 == 0 {
            h.click("#about summary").await; // opens / closes a section: no request
        } else {
            h.type_into("note-text", "typing").await; // key presses: no request
        }
        round += 1;
        assert!(
            h.visible("app-view").await,
            "logged out after {:?} of activity",
            start.elapsed()
        );
    }

    assert!(h.visible("app-view").await, "still signed in");
    assert_eq!(h.login_redirects().await, 0);
    let last = h
        .session_cookie()
        .await
        .expect("the session cookie is still there");
    assert_ne!(first.value(), last.value(), "the cookie was reissued");
    assert_eq!(last.http_only(), Some(true));

    let log = h.fetch_log().await;
    let refreshes = count(&log, |e| {
        e["path"] == "/session/refresh" && e["method"] == "POST" && e["status"] == 200
    });
    assert!(
        refreshes >= 2,
        "auto-extend refreshed near the deadlines: {log:?}"
    );
    assert_eq!(count(&log, |e| e["status"] == 401), 0, "no 401: {log:?}");
    // The server agrees: the session is alive, 9 s after a 4 s idle timeout.
    let (status, body) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, body["user"].as_str()), (200, Some("alice")));
    h.finish().await;
}

/// Nobody touches the page, which polls passively every second: the warning shows, then
/// the page lands on the login view exactly once, and makes no request after that.
#[tokio::test]
async fn idle_page_warns_then_lands_on_login_exactly_once() {
    let _serial = SERIAL.lock().await;
    let env = [
        ("JWT_SESSION_IDLE", "5s"),
        ("JWT_SESSION_REISSUE_AFTER", "1s"),
        ("JWT_SESSION_LEEWAY", "0s"),
    ];
    let Some(h) = Harness::start("idle", &env).await else {
        return;
    };
    h.goto("/?warn=3&poll=1").await;
    h.record_fetches().await;
    h.log_in("alice", "wonderland").await;

    h.wait_visible("expiry-warning", Duration::from_secs(6))
        .await;
    assert!(
        h.visible("app-view").await,
        "the warning shows before the end"
    );
    assert_eq!(h.login_redirects().await, 0);
    h.screenshot("expiry-warning.png").await;

    h.wait_visible("login-view", Duration::from_secs(8)).await;
    let message = h.text("login-message").await;
    assert!(message.contains("inactivity"), "{message:?}");
    assert_eq!(h.login_redirects().await, 1);

    // Let the timers, poller and channel run: nothing more may happen.
    let before = h.fetch_log().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = h.fetch_log().await;
    assert_eq!(
        before.len(),
        after.len(),
        "requests after landing on the login view: {after:?}"
    );
    assert_eq!(h.login_redirects().await, 1, "redirected to login once");
    assert_eq!(
        count(&after, |e| e["status"] == 401),
        1,
        "exactly one 401 ended the session: {after:?}"
    );
    let passive_ok = count(&after, |e| {
        e["path"] == "/session" && e["passive"] == true && e["status"] == 200
    });
    assert!(
        passive_ok >= 2,
        "the page polled (passively) while the session lived: {after:?}"
    );
    assert!(
        h.session_cookie().await.is_none(),
        "the dead cookie is gone"
    );
    h.finish().await;
}

/// Two tabs share a session; logging out in one sends the other to the login view, and a
/// login in one wakes the other up.
#[tokio::test]
async fn logout_in_one_tab_ends_the_session_in_the_other() {
    let _serial = SERIAL.lock().await;
    let Some(h) = Harness::start("tabs", &[("JWT_SESSION_IDLE", "2m")]).await else {
        return;
    };
    h.goto("/").await;
    h.log_in("alice", "wonderland").await;
    let first = h.client.window().await.expect("first tab");

    let second = h.client.new_window(true).await.expect("second tab").handle;
    h.client
        .switch_to_window(second.clone())
        .await
        .expect("switch to the second tab");
    h.goto("/").await;
    h.wait_visible("app-view", Duration::from_secs(10)).await;
    assert_eq!(h.text("user").await, "alice");

    h.client
        .switch_to_window(first.clone())
        .await
        .expect("back to the first tab");
    h.click("#logout-button").await;
    h.wait_visible("login-view", Duration::from_secs(5)).await;
    assert!(h.text("login-message").await.contains("logged out"));

    h.client
        .switch_to_window(second.clone())
        .await
        .expect("switch to the second tab");
    h.wait_visible("login-view", Duration::from_secs(5)).await;
    let message = h.text("login-message").await;
    assert!(message.contains("another tab"), "{message:?}");
    assert_eq!(h.login_redirects().await, 1);
    let (status, body) = h.page_fetch("/api/me", "{}").await;
    assert_eq!(status, 401, "{body}");
    assert!(h.session_cookie().await.is_none());

    // A login in the second tab brings the first one back.
    h.log_in("bob", "builder").await;
    h.client
        .switch_to_window(first)
        .await
        .expect("back to the first tab");
    h.wait_visible("app-view", Duration::from_secs(5)).await;
    h.wait_until(
        "bob in the first tab",
        "document.getElementById('user').textContent === 'bob'",
        Duration::from_secs(5),
    )
    .await;
    h.finish().await;
}

/// A POST made from the page with plain `fetch` (no X-CSRF-Token) is refused with 403
/// `csrf_missing`; a wrong token gets `csrf_mismatch`; the client's own POST passes, and
/// none of this ends the session. Then "log out everywhere".
#[tokio::test]
async fn post_without_the_csrf_header_is_refused() {
    let _serial = SERIAL.lock().await;
    let Some(h) = Harness::start("csrf", &[("JWT_SESSION_IDLE", "2m")]).await else {
        return;
    };
    h.goto("/").await;
    h.log_in("alice", "wonderland").await;

    let init = "{method: 'POST', headers: {'Content-Type': 'application/json'}, \
                body: JSON.stringify({text: 'forged'})}";
    let (status, body) = h.page_fetch("/api/notes", init).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf_missing", "{body}");

    let init = "{method: 'POST', headers: {'Content-Type': 'application/json', \
                'X-CSRF-Token': 'not-the-token'}, body: JSON.stringify({text: 'forged'})}";
    let (status, body) = h.page_fetch("/api/notes", init).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf_mismatch", "{body}");

    let created = h
        .js("return session.fetch('/api/notes', {method: 'POST', \
             body: JSON.stringify({text: 'real'})}).then((r) => r.status);")
        .await;
    assert_eq!(created, json!(201));
    assert!(
        h.visible("app-view").await,
        "a 403 does not end the session"
    );
    assert_eq!(h.login_redirects().await, 0);

    h.click("#logout-all-button").await;
    h.wait_visible("login-view", Duration::from_secs(5)).await;
    assert!(h.text("login-message").await.contains("everywhere"));
    let (status, _) = h.page_fetch("/api/me", "{}").await;
    assert_eq!(status, 401);
    h.finish().await;
}

/// "Remember me": without the box the session cookie is a browser-session cookie (no
/// expiry); with it the cookie is persistent, with the remembered idle lifetime.
#[tokio::test]
async fn remember_me_makes_the_session_cookie_persistent() {
    const REMEMBER_IDLE: i64 = 3 * 24 * 3600;
    let _serial = SERIAL.lock().await;
    let env = [
        ("JWT_SESSION_IDLE", "10m"),
        ("JWT_SESSION_REMEMBER_IDLE", "3d"),
        ("JWT_SESSION_REMEMBER_ABSOLUTE", "30d"),
    ];
    let Some(h) = Harness::start("remember", &env).await else {
        return;
    };
    h.goto("/").await;

    // Box not ticked: a cookie for this browser session only.
    h.log_in_with("alice", "wonderland", false).await;
    let cookie = h.session_cookie().await.expect("a session cookie");
    assert_eq!(
        cookie.expires_datetime(),
        None,
        "without remember me the cookie has no expiry: {cookie:?}"
    );
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, &me["remember"]), (200, &json!(false)), "{me}");
    h.wait_until(
        "the session kind",
        "document.getElementById('session-kind').textContent.includes('ends when you close')",
        Duration::from_secs(5),
    )
    .await;

    h.click("#logout-button").await;
    h.wait_visible("login-view", Duration::from_secs(5)).await;
    assert!(h.session_cookie().await.is_none(), "logged out");

    // Box ticked: a persistent cookie that lives as long as a remembered session.
    h.type_into("username", "alice").await;
    h.type_into("password", "wonderland").await;
    h.set_checked("remember", true).await;
    h.artifact_screenshot("remember-login.png").await;
    let before = unix_now();
    h.click("#login-button").await;
    h.wait_visible("app-view", Duration::from_secs(10)).await;
    let after = unix_now() + 1;
    let cookie = h.session_cookie().await.expect("a session cookie");
    let expiry = cookie
        .expires_datetime()
        .unwrap_or_else(|| panic!("with remember me the cookie has an expiry: {cookie:?}"))
        .unix_timestamp();
    // The browser turns Max-Age into an expiry when the response arrives; both sides count
    // whole seconds.
    assert!(
        (before + REMEMBER_IDLE - 2..=after + REMEMBER_IDLE + 2).contains(&expiry),
        "expiry {expiry} is not JWT_SESSION_REMEMBER_IDLE (3d) after the login \
         ({before}..={after})"
    );
    assert_eq!(cookie.http_only(), Some(true));
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, &me["remember"]), (200, &json!(true)), "{me}");
    h.wait_until(
        "the session kind",
        "document.getElementById('session-kind').textContent.includes('remembers you')",
        Duration::from_secs(5),
    )
    .await;
    h.wait_until(
        "a countdown in days",
        "/^[23] d \\d+ h$/.test(document.getElementById('countdown').textContent)",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        h.login_redirects().await,
        1,
        "only the logout went to the login view"
    );
    h.artifact_screenshot("remember-logged-in.png").await;
    h.finish().await;
}

/// The profile form changes the display name kept in the session: the page shows it at
/// once, and after a reload `/api/me` (and so the page) still has it, in the same session.
#[tokio::test]
async fn profile_form_updates_the_display_name_in_the_session() {
    let _serial = SERIAL.lock().await;
    let Some(h) = Harness::start("profile", &[("JWT_SESSION_IDLE", "10m")]).await else {
        return;
    };
    h.goto("/").await;
    h.log_in("alice", "wonderland").await;
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, &me["display_name"]), (200, &Value::Null), "{me}");
    let sid = me["sid"].clone();
    assert!(!h.visible("shown-as").await, "no display name yet");

    // Blank: refused by the server, shown as an error.
    h.type_into("display-name", "   ").await;
    h.click("#profile-button").await;
    h.wait_until(
        "the invalid display name message",
        "document.getElementById('profile-error').textContent.includes('1 to 64')",
        Duration::from_secs(5),
    )
    .await;

    // Markup in the name is shown as text, never as HTML.
    let name = "Alice <i>Liddell</i>";
    let literal = json!(name).to_string();
    h.type_into("display-name", name).await;
    h.click("#profile-button").await;
    h.wait_until(
        "the new display name on the page",
        &format!("document.getElementById('shown-name').textContent === {literal}"),
        Duration::from_secs(5),
    )
    .await;
    assert!(h.visible("shown-as").await);
    assert_eq!(h.text("profile-status").await, "Saved.");
    assert_eq!(h.text("profile-error").await, "");
    assert_eq!(
        h.js("return document.querySelector('#shown-name i');")
            .await,
        Value::Null,
        "the name is text"
    );
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, me["display_name"].as_str()), (200, Some(name)));
    assert_eq!(me["sid"], sid, "the same session: {me}");
    h.artifact_screenshot("profile.png").await;

    // A reload: the session (its new cookie) still has the name.
    h.goto("/").await;
    h.wait_visible("app-view", Duration::from_secs(10)).await;
    h.wait_until(
        "the display name after a reload",
        &format!(
            "document.getElementById('shown-name').textContent === {literal} \
             && document.getElementById('display-name').value === {literal}"
        ),
        Duration::from_secs(5),
    )
    .await;
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, me["display_name"].as_str()), (200, Some(name)));
    assert_eq!(me["sid"], sid, "the same session: {me}");
    assert_eq!(h.login_redirects().await, 0);
    h.finish().await;
}

/// A password change needs a recent login (`JWT_SESSION_FRESH=2s`): once the login is
/// older, the page asks for the password again in an inline prompt. A wrong password
/// shows an error and the user stays signed in; the right one re-authenticates, the
/// change is retried once and succeeds, and nobody is logged out.
#[tokio::test]
async fn password_change_asks_for_the_password_again() {
    const NEW_PASSWORD: &str = "through-the-looking-glass";
    let _serial = SERIAL.lock().await;
    let env = [("JWT_SESSION_IDLE", "10m"), ("JWT_SESSION_FRESH", "2s")];
    let Some(h) = Harness::start("reauth", &env).await else {
        return;
    };
    h.goto("/?poll=0").await;
    h.record_fetches().await;
    h.log_in("alice", "wonderland").await;
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!(status, 200, "{me}");
    let fresh_at = me["fresh_at"].as_i64().expect("fresh_at in /api/me");

    // The server counts whole seconds: the login is too old once now - fresh_at > 2.
    h.type_into("new-password", NEW_PASSWORD).await;
    h.wait_until(
        "the login to be older than JWT_SESSION_FRESH",
        &format!("Date.now() / 1000 >= {}", fresh_at + 3),
        Duration::from_secs(5),
    )
    .await;
    h.click("#password-button").await;
    h.wait_visible("reauth-prompt", Duration::from_secs(5))
        .await;
    let prompt = h.text("reauth-text").await;
    assert!(prompt.contains("2 seconds"), "{prompt:?}");
    assert_eq!(h.text("password-status").await, "");
    assert_eq!(h.text("password-error").await, "");

    // A wrong password: an error, the prompt stays, the session too.
    h.type_into("reauth-password", "not-my-password").await;
    h.click("#reauth-button").await;
    h.wait_until(
        "the wrong-password message",
        "document.getElementById('reauth-error').textContent.includes('Wrong password')",
        Duration::from_secs(5),
    )
    .await;
    assert!(h.visible("reauth-prompt").await);
    assert!(h.visible("app-view").await, "still signed in");
    assert_eq!(h.login_redirects().await, 0);
    let (status, me) = h.page_fetch("/api/me", "{}").await;
    assert_eq!((status, me["user"].as_str()), (200, Some("alice")), "{me}");
    h.artifact_screenshot("reauth-prompt.png").await;

    // The right password: re-authenticated, the change retried once, and done.
    h.type_into("reauth-password", "wonderland").await;
    h.click("#reauth-button").await;
    h.wait_until(
        "the password changed message",
        "document.getElementById('password-status').textContent.includes('changed')",
        Duration::from_secs(5),
    )
    .await;
    assert!(!h.visible("reauth-prompt").await, "the prompt is gone");
    assert!(h.visible("app-view").await, "still signed in");
    assert_eq!(h.text("password-error").await, "");
    assert_eq!(h.text("user").await, "alice");
    assert_eq!(h.login_redirects().await, 0);
    h.artifact_screenshot("password-changed.png").await;

    let log = h.fetch_log().await;
    assert_eq!(
        statuses(&log, "POST", "/api/password"),
        [json!(403), json!(200)],
        "refused, then retried once after the re-authentication: {log:?}"
    );
    assert_eq!(
        statuses(&log, "POST", "/reauth"),
        [json!(401), json!(200)],
        "{log:?}"
    );
    assert_eq!(
        count(&log, |e| e["status"] == 401 && e["path"] != "/reauth"),
        0,
        "{log:?}"
    );

    // The change is real: the old password no longer confirms, the new one does.
    let check = "return session.reauth(arguments[0]).then(() => 'ok', (e) => e.code);";
    let old = h.client.execute(check, vec![json!("wonderland")]).await;
    assert_eq!(old.expect("reauth"), json!("invalid_credentials"));
    let new = h.client.execute(check, vec![json!(NEW_PASSWORD)]).await;
    assert_eq!(new.expect("reauth"), json!("ok"));
    let (status, _) = h.page_fetch("/api/me", "{}").await;
    assert_eq!(status, 200, "still signed in");
    h.finish().await;
}

/// The server-rendered pages with JavaScript off (Chromium's content setting): `/account`
/// without a session goes to the login form, the form logs in and comes back, the profile
/// form and the logout button work, a session idle past `JWT_SESSION_IDLE` is refused on a
/// reload, and each login lands on its `next`.
#[tokio::test]
async fn server_rendered_pages_work_with_javascript_off() {
    let _serial = SERIAL.lock().await;
    let env = [
        ("JWT_SESSION_IDLE", "4s"),
        ("JWT_SESSION_REISSUE_AFTER", "1s"),
        ("JWT_SESSION_LEEWAY", "0s"),
    ];
    let options = BrowserOptions {
        no_javascript: true,
        ..BrowserOptions::default()
    };
    let Some(h) = Harness::start_with("nojs", &env, options).await else {
        return;
    };

    // JavaScript is off: the SPA's scripts never ran (WebDriver's own scripts still do).
    // With them, `SessionClient` and the redirect counter exist once the page has loaded,
    // and the login view shows right after.
    h.goto("/").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ran = h
        .js(
            "return [typeof window.SessionClient, typeof window.__loginRedirects, \
             document.getElementById('login-view').classList.contains('hidden'), \
             document.getElementById('app-view').classList.contains('hidden')];",
        )
        .await;
    assert_eq!(
        ran,
        json!(["undefined", "undefined", true, true]),
        "the SPA's scripts ran: JavaScript is on"
    );

    // No session: /account sends the browser to the login form, with `next`.
    h.goto("/account").await;
    h.wait_location("/login?next=%2Faccount").await;
    let next = h
        .js("return document.querySelector('#login-form input[name=next]').value;")
        .await;
    assert_eq!(next, json!("/account"));
    h.artifact_screenshot("nojs-login.png").await;

    // A wrong password: the form again, with an error and no session.
    h.type_into("username", "alice").await;
    h.type_into("password", "not-the-password").await;
    h.click("#login-submit").await;
    h.wait_until(
        "the wrong-password message",
        "document.getElementById('login-error') \
         && document.getElementById('login-error').textContent.includes('Wrong')",
        Duration::from_secs(10),
    )
    .await;
    assert!(h.session_cookie().await.is_none(), "no session");

    // The right one: back on /account (the form kept `next`), signed in.
    h.type_into("username", "alice").await;
    h.type_into("password", "wonderland").await;
    h.click("#login-submit").await;
    h.wait_location("/account").await;
    assert_eq!(h.text("account-user").await, "alice");
    let cookie = h.session_cookie().await.expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));

    // The profile form: the page shows the new name.
    h.type_into("display-name", "Alice Liddell").await;
    h.click("#profile-submit").await;
    h.wait_until(
        "the new display name",
        "document.getElementById('account-name') \
         && document.getElementById('account-name').textContent === 'Alice Liddell'",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(h.current_path().await, "/account");
    assert_eq!(h.text("account-user").await, "alice");
    h.artifact_screenshot("nojs-account.png").await;

    // The logout button: the session ends, /account sends the browser to the login form.
    h.click("#logout-submit").await;
    h.wait_location("/login?next=%2Faccount").await;
    assert!(h.session_cookie().await.is_none(), "logged out");

    // A login with another `next` lands there.
    h.goto("/login?next=%2Faccount%3Fwelcome%3Dback").await;
    h.type_into("username", "alice").await;
    h.type_into("password", "wonderland").await;
    h.click("#login-submit").await;
    h.wait_location("/account?welcome=back").await;
    assert_eq!(h.text("account-user").await, "alice");

    // Idle past JWT_SESSION_IDLE (4 s, no leeway): a reload of /account is refused and
    // the dead cookie cleared.
    h.goto("/account").await;
    assert_eq!(h.text("account-user").await, "alice");
    tokio::time::sleep(Duration::from_millis(5500)).await;
    h.client.refresh().await.expect("reload");
    h.wait_location("/login?next=%2Faccount").await;
    assert!(
        h.session_cookie().await.is_none(),
        "the dead cookie is gone"
    );
    h.artifact_screenshot("nojs-expired.png").await;

    // Logging in again goes back to `next`.
    h.type_into("username", "alice").await;
    h.type_into("password", "wonderland").await;
    h.click("#login-submit").await;
    h.wait_location("/account").await;
    assert_eq!(h.text("account-user").await, "alice");
    h.finish().await;
}

/// Whether `#sessions` lists `n` sessions (the SPA's "Where you're signed in").
fn listed(n: usize) -> String {
    format!("document.querySelectorAll('#sessions li').length === {n}")
}

/// Two browsers (two profiles: two devices) signed in as alice. The first lists both
/// sessions in "Where you're signed in" and signs the other one out; that one lands on
/// its login view exactly once, and makes no request after. Then the same with "sign
/// out all other devices".
#[tokio::test]
async fn sessions_panel_signs_out_another_device() {
    const OTHER_AGENT: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
    let _serial = SERIAL.lock().await;
    let Some(first) = Harness::start("inventory", &[("JWT_SESSION_IDLE", "2m")]).await else {
        return;
    };
    let other = BrowserOptions {
        user_agent: Some(OTHER_AGENT),
        ..BrowserOptions::default()
    };
    let second = first.second_browser("inventory-other", other).await;

    first.goto("/").await;
    first.log_in("alice", "wonderland").await;
    first
        .wait_until("this session listed", &listed(1), Duration::from_secs(5))
        .await;
    assert_eq!(
        first
            .js("return document.getElementById('logout-others-button').disabled;")
            .await,
        json!(true),
        "no other device to sign out"
    );

    // The other device: passive checks every second find out when its session ends.
    second.goto("/?poll=1").await;
    second.record_fetches().await;
    second.log_in_with("alice", "wonderland", true).await;
    second
        .wait_until("both sessions listed", &listed(2), Duration::from_secs(5))
        .await;

    // The first device's list, refreshed: both sessions, this one marked.
    first.click("#sessions-refresh").await;
    first
        .wait_until("both sessions listed", &listed(2), Duration::from_secs(5))
        .await;
    let rows = first
        .js(
            "return [...document.querySelectorAll('#sessions li')].map((li) => ({\
             current: li.classList.contains('current'), \
             badge: li.querySelector('.this-device')?.textContent ?? null, \
             agent: li.querySelector('.session-agent').textContent, \
             times: li.querySelector('.session-times').textContent, \
             button: li.querySelector('button.revoke-session')?.textContent ?? null}));",
        )
        .await;
    let rows = rows.as_array().expect("rows");
    let (mine, theirs): (Vec<&Value>, Vec<&Value>) =
        rows.iter().partition(|r| r["current"] == true);
    assert_eq!((mine.len(), theirs.len()), (1, 1), "{rows:?}");
    let (mine, theirs) = (mine[0], theirs[0]);
    assert_eq!(mine["badge"], "This device", "{mine}");
    assert_eq!(
        mine["button"],
        Value::Null,
        "no sign-out for this device: {mine}"
    );
    let agent = mine["agent"].as_str().expect("agent");
    assert!(
        agent.starts_with("Chrome ") && agent.ends_with(" on Linux"),
        "{agent:?}"
    );
    assert!(
        mine["times"].as_str().is_some_and(
            |t| t.contains("last active just now") && t.contains("until the browser closes")
        ),
        "{mine}"
    );
    assert_eq!(theirs["agent"], "Safari 17 on macOS", "{theirs}");
    assert_eq!(theirs["badge"], Value::Null, "{theirs}");
    assert_eq!(theirs["button"], "Sign out", "{theirs}");
    assert!(
        theirs["times"]
            .as_str()
            .is_some_and(|t| t.starts_with("Signed in ") && t.contains("remembered")),
        "{theirs}"
    );
    // Newest activity first (ties: newest sign-in first). Which device that is depends
    // on whether a second ticked between the two devices' last requests, so the test
    // checks the order the contract promises, not one fixed outcome.
    let api = first
        .js("return session.listSessions().then((list) => \
             list.map((s) => [s.current, s.last_active, s.created]));")
        .await;
    let api = api.as_array().expect("listed sessions");
    assert_eq!(api.len(), 2, "{api:?}");
    assert_eq!(
        api.iter().filter(|s| s[0] == true).count(),
        1,
        "exactly this one current: {api:?}"
    );
    let key = |s: &Value| {
        (
            s[1].as_i64().expect("last_active"),
            s[2].as_i64().expect("created"),
        )
    };
    assert!(key(&api[0]) >= key(&api[1]), "newest first: {api:?}");
    first
        .js("document.getElementById('sessions-card').scrollIntoView({block: 'center'});")
        .await;
    first.artifact_screenshot("sessions.png").await;

    // Sign the other device out.
    first
        .click("#sessions li:not(.current) button.revoke-session")
        .await;
    first
        .wait_until(
            "the list without the other device",
            &format!(
                "{} && document.getElementById('sessions-status').textContent.includes('signed out')",
                listed(1)
            ),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        first.visible("app-view").await,
        "this device is still signed in"
    );
    assert_eq!(first.login_redirects().await, 0);

    // The other device finds out by itself, once.
    second
        .wait_visible("login-view", Duration::from_secs(5))
        .await;
    let message = second.text("login-message").await;
    assert!(message.contains("session_revoked"), "{message:?}");
    assert_eq!(second.login_redirects().await, 1);
    second.artifact_screenshot("sessions-revoked.png").await;
    let before = second.fetch_log().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = second.fetch_log().await;
    assert_eq!(
        before.len(),
        after.len(),
        "requests after landing on the login view: {after:?}"
    );
    assert_eq!(second.login_redirects().await, 1, "to the login view once");
    assert_eq!(
        count(&after, |e| e["status"] == 401),
        1,
        "exactly one 401 ended the session: {after:?}"
    );
    assert!(
        second.session_cookie().await.is_none(),
        "the dead cookie is gone"
    );

    // Again, with "sign out all other devices".
    second.log_in("alice", "wonderland").await;
    first.click("#sessions-refresh").await;
    first
        .wait_until(
            "both sessions listed again",
            &format!(
                "{} && !document.getElementById('logout-others-button').disabled",
                listed(2)
            ),
            Duration::from_secs(5),
        )
        .await;
    first.click("#logout-others-button").await;
    first
        .wait_until(
            "the list with this device only",
            &format!(
                "{} && document.getElementById('sessions-status').textContent.includes('Every other')",
                listed(1)
            ),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        first
            .js("return document.getElementById('logout-others-button').disabled;")
            .await,
        json!(true)
    );
    first
        .js("document.getElementById('sessions-card').scrollIntoView({block: 'center'});")
        .await;
    first.artifact_screenshot("sessions-others-out.png").await;
    second
        .wait_visible("login-view", Duration::from_secs(5))
        .await;
    assert_eq!(second.login_redirects().await, 2);
    let (status, body) = second.page_fetch("/api/me", "{}").await;
    assert_eq!(status, 401, "{body}");
    let (status, me) = first.page_fetch("/api/me", "{}").await;
    assert_eq!((status, me["user"].as_str()), (200, Some("alice")), "{me}");
    assert_eq!(first.login_redirects().await, 0);
    second.finish().await;
    first.finish().await;
}
