//! The real self-hosted Cloud (`kalguard-cloud`) for the Cloud-mode tests:
//! its binary (`KALGUARD_CLOUD_BIN` or the workspace's newest build; the
//! tests skip, loudly, without one unless `KALGUARD_TEST_REQUIRE_ALL=1`), a
//! running instance with one enterprise organisation, a stack in Cloud mode
//! on it, and a member's browser on its dashboard.

use super::{chat, send, skip_in_istio_shape, start, wait_for};
use kalguard_e2e::stack::{free_port, Options, Stack};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const OWNER: &str = "owner@e2e.test";
pub const PASSWORD: &str = "correct horse battery staple";

/// The Cloud binary: `KALGUARD_CLOUD_BIN`, else the newest of the workspace's
/// release and debug builds. Without one the tests skip, loudly, unless
/// `KALGUARD_TEST_REQUIRE_ALL=1` (as `cloud/tests/run.sh` treats a missing tool).
pub fn cloud_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KALGUARD_CLOUD_BIN") {
        return Some(PathBuf::from(path));
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let newest = ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("kalguard-cloud"))
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .max()
        .map(|(_, path)| path);
    if newest.is_none() {
        let missing =
            "no kalguard-cloud build (cargo build -p kalguard-cloud, or set KALGUARD_CLOUD_BIN)";
        assert!(
            std::env::var("KALGUARD_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
            "{missing}"
        );
        eprintln!("SKIP: {missing}; the Cloud approval tests did not run");
    }
    newest
}

/// A running Cloud on loopback with one enterprise organisation.
pub struct Cloud {
    child: Child,
    pub dir: PathBuf,
    pub url: String,
    pub api_key: String,
    /// An agent token for `agent-e2e`, minted by the Cloud.
    pub token: String,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn cloud_cli(binary: &Path, dir: &Path, args: &[&str]) -> String {
    let output = Command::new(binary)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KALGUARD_CLOUD_DATABASE_URL")
        .env("KALGUARD_CLOUD_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kalguard-cloud {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub fn start_cloud(binary: &Path) -> Cloud {
    let dir = std::env::temp_dir().join(format!(
        "kalguard-e2e-cloud-{}-{}",
        std::process::id(),
        free_port().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let api_key = cloud_cli(
        binary,
        &dir,
        &[
            "org",
            "create",
            "--name",
            "E2E",
            "--email",
            OWNER,
            "--password",
            PASSWORD,
            "--plan",
            "enterprise",
        ],
    );
    let token = cloud_cli(
        binary,
        &dir,
        &[
            "token",
            "create",
            "--api-key",
            &api_key,
            "--agent",
            "agent-e2e",
        ],
    );
    let port = free_port().unwrap();
    let log = std::fs::File::create(dir.join("cloud.log")).unwrap();
    let child = Command::new(binary)
        .arg("--data-dir")
        .arg(&dir)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env_remove("KALGUARD_CLOUD_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let cloud = Cloud {
        child,
        dir,
        url,
        api_key,
        token,
    };
    wait_for("the Cloud to answer /healthz", || {
        ureq::get(&format!("{}/healthz", cloud.url)).call().is_ok()
    });
    cloud
}

/// Envoy (with `plugin_config`) and the control plane in Cloud mode, once
/// the Cloud's license (its signing secret) is in force at the filter.
pub fn stack_on(cloud: &Cloud, plugin_config: String) -> Stack {
    let stack = start(Options {
        plugin_config: Some(plugin_config),
        control_plane: Some(vec![
            ("KALGUARD_API_KEY".into(), cloud.api_key.clone()),
            ("KALGUARD_CLOUD_URL".into(), cloud.url.clone()),
        ]),
        ..Options::default()
    });
    wait_for("the Cloud's token to be accepted", || {
        let reply = send(
            "POST",
            &stack.url("/v1/chat/completions"),
            &[
                ("content-type", "application/json"),
                ("x-kalguard-token", &cloud.token),
            ],
            Some(chat("hello").to_string().as_bytes()),
        );
        reply.status == 200
    });
    stack
}

/// A member's browser on the Cloud's dashboard: a cookie jar over ureq.
pub struct Dashboard {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Dashboard {
    /// The organisation's owner, logged in.
    pub fn login(cloud: &Cloud) -> Dashboard {
        Dashboard::login_as(cloud, OWNER, PASSWORD)
    }

    /// A member, logged in.
    pub fn login_as(cloud: &Cloud, email: &str, password: &str) -> Dashboard {
        let mut d = Dashboard {
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(10))
                .build(),
            base: cloud.url.clone(),
            cookies: Vec::new(),
        };
        let csrf = csrf_of(&d.get("/login"));
        let (status, location) = d.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        );
        assert_eq!(status, 303, "login: {location}");
        d
    }

    fn keep(&mut self, response: &ureq::Response) {
        for set in response.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != name);
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&mut self, path: &str) -> String {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("cookie", &self.cookie())
            .call()
            .unwrap();
        self.keep(&response);
        response.into_string().unwrap()
    }

    /// A form post: its status and `location`.
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = match self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("cookie", &self.cookie())
            .send_form(form)
        {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{path}: {error}"),
        };
        self.keep(&response);
        let location = response.header("location").unwrap_or_default().to_owned();
        (response.status(), location)
    }
}

/// The value of the first CSRF field of a dashboard page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

/// A running Cloud and a stack in Cloud mode on it (with `plugin_config`);
/// `None` when the test is skipped (no Cloud binary, or the Istio shape).
pub fn cloud_and_stack(plugin_config: String) -> Option<(Cloud, Stack)> {
    if skip_in_istio_shape("the Cloud test needs nothing of the mesh shape") {
        return None;
    }
    let cloud = start_cloud(&cloud_binary()?);
    let stack = stack_on(&cloud, plugin_config);
    Some((cloud, stack))
}
