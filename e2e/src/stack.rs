//! Runs the real `.wasm` filter in a real Envoy, in front of an in-process
//! stand-in upstream, on free loopback ports.
//!
//! The Envoy configuration is the repository's own `envoy.yaml` with its ports,
//! wasm path and plugin configuration replaced, so the tests prove the shipped
//! configuration works. Envoy comes from `KALGUARD_ENVOY` (set by `make test`)
//! or `.tools/venv/bin/envoy`; the filter from `KALGUARD_WASM` or the release
//! build under `target/`.
//!
//! Every stack draws its own channel key (`KALGUARD_CHANNEL_KEY`) and gives it
//! to Envoy and to the control plane, unless a test sets its own in either
//! environment.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stub::{Log, Recorded};
use crate::tls::{Handshake, Handshakes, ServerCert};

/// How a test wants its stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// The filter's plugin configuration (JSON); `None` keeps envoy.yaml's.
    pub plugin_config: Option<String>,
    /// Envoy worker threads.
    pub concurrency: u32,
    /// Environment of the Envoy process (the filter reads it via WASI).
    pub env: Vec<(String, String)>,
    /// `false` removes the filter: plain Envoy, for comparisons.
    pub with_filter: bool,
    /// Run the real control plane (`kalguard serve`) with this environment.
    pub control_plane: Option<Vec<(String, String)>>,
    /// Load this `.wasm` instead of the KalGuard filter (benchmarks).
    pub wasm: Option<PathBuf>,
    /// The control plane listens on a Unix socket in the stack's directory,
    /// and Envoy's cluster reaches it through a `pipe` address.
    pub control_plane_socket: bool,
    /// An Envoy configuration to run instead of the repository's envoy.yaml,
    /// with the same placeholders (its ports, wasm path and control-plane
    /// address, each once): the mesh tests' Istio-shaped configuration.
    pub envoy_yaml: Option<String>,
    /// The stand-in upstream speaks TLS with this certificate
    /// ([`crate::tls`]); the Envoy configuration must originate it.
    pub upstream_tls: Option<ServerCert>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            plugin_config: None,
            concurrency: 2,
            env: Vec::new(),
            with_filter: true,
            control_plane: None,
            wasm: None,
            control_plane_socket: false,
            envoy_yaml: None,
            upstream_tls: None,
        }
    }
}

/// A running Envoy + stand-in upstream. Dropping it stops Envoy.
pub struct Stack {
    pub listener_port: u16,
    pub admin_port: u16,
    pub upstream_port: u16,
    /// Where the control plane listens (when the stack runs one).
    pub control_plane_port: u16,
    upstream_log: Log,
    upstream_handshakes: Handshakes,
    envoy: Child,
    control_plane: Option<Child>,
    /// The control plane's environment, used again by
    /// [`Stack::restart_control_plane`] (a test may change it in between).
    pub control_plane_env: Vec<(String, String)>,
    /// The control plane's Unix socket (`Options::control_plane_socket`).
    pub control_plane_socket: Option<PathBuf>,
    /// The channel key this stack gave Envoy and the control plane.
    pub channel_key: String,
    dir: PathBuf,
    /// The control plane's data directory (audit log, spool, license cache).
    pub data_dir: PathBuf,
    log_path: PathBuf,
    _runtime: Arc<tokio::runtime::Runtime>,
}

/// Why a stack could not start; says what to do about it.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The Envoy binary to run.
pub fn envoy_binary() -> PathBuf {
    std::env::var_os("KALGUARD_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/venv/bin/envoy"))
}

/// The filter build to load.
pub fn wasm_path() -> PathBuf {
    std::env::var_os("KALGUARD_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/wasm32-wasip1/release/kalguard_filter.wasm")
        })
}

/// The control-plane binary: `KALGUARD_CONTROL_PLANE_BIN`, else the release
/// build, else the debug build.
pub fn control_plane_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KALGUARD_CONTROL_PLANE_BIN") {
        return PathBuf::from(path);
    }
    let release = workspace_root().join("target/release/kalguard");
    if release.exists() {
        release
    } else {
        workspace_root().join("target/debug/kalguard")
    }
}

/// A free loopback port (bound then released: another process could take it,
/// which on a test machine is rare enough).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn replace_once(text: &mut String, from: &str, to: &str) -> Result<(), StartError> {
    match text.matches(from).count() {
        1 => {
            *text = text.replacen(from, to, 1);
            Ok(())
        }
        n => Err(StartError(format!(
            "envoy.yaml: expected `{from}` once, found it {n} times"
        ))),
    }
}

/// A fresh channel key: 32 random bytes in hex.
pub fn new_channel_key() -> Result<String, StartError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| StartError(format!("cannot read /dev/urandom for a channel key: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The repository's envoy.yaml, adapted to the given ports and options; with
/// `control_plane_socket`, the control plane's cluster points at that socket.
pub fn envoy_config(
    options: &Options,
    listener: u16,
    admin: u16,
    upstream: u16,
    control_plane: u16,
    control_plane_socket: Option<&Path>,
) -> Result<String, StartError> {
    let mut yaml = match &options.envoy_yaml {
        Some(yaml) => yaml.clone(),
        None => {
            let path = workspace_root().join("envoy.yaml");
            std::fs::read_to_string(&path)
                .map_err(|e| StartError(format!("cannot read {}: {e}", path.display())))?
        }
    };
    replace_once(
        &mut yaml,
        "port_value: 10000",
        &format!("port_value: {listener}"),
    )?;
    replace_once(
        &mut yaml,
        "port_value: 9901",
        &format!("port_value: {admin}"),
    )?;
    replace_once(
        &mut yaml,
        "port_value: 18000",
        &format!("port_value: {upstream}"),
    )?;
    match control_plane_socket {
        Some(socket) => replace_once(
            &mut yaml,
            "socket_address: { address: 127.0.0.1, port_value: 9292 }",
            &format!("pipe: {{ path: {} }}", socket.display()),
        )?,
        None => replace_once(
            &mut yaml,
            "port_value: 9292",
            &format!("port_value: {control_plane}"),
        )?,
    }
    let wasm = options.wasm.clone().unwrap_or_else(wasm_path);
    replace_once(
        &mut yaml,
        "target/wasm32-wasip1/release/kalguard_filter.wasm",
        &wasm.display().to_string(),
    )?;
    if let Some(plugin_config) = &options.plugin_config {
        replace_plugin_config(&mut yaml, plugin_config)?;
    }
    if !options.with_filter {
        let start = yaml
            .find("          - name: kalguard\n")
            .ok_or_else(|| StartError("envoy.yaml: no kalguard filter".into()))?;
        let end = yaml
            .find("          - name: envoy.filters.http.router")
            .ok_or_else(|| StartError("envoy.yaml: no router filter".into()))?;
        yaml.replace_range(start..end, "");
    }
    Ok(yaml)
}

/// Replaces the single-quoted plugin configuration line of envoy.yaml.
fn replace_plugin_config(yaml: &mut String, plugin_config: &str) -> Result<(), StartError> {
    let line = yaml
        .lines()
        .find(|line| line.trim_start().starts_with("value: '"))
        .map(str::to_owned)
        .ok_or_else(|| {
            StartError("envoy.yaml: no plugin configuration `value: '...'` line".into())
        })?;
    let indent = &line[..line.len() - line.trim_start().len()];
    let quoted = plugin_config.replace('\'', "''");
    replace_once(yaml, &line, &format!("{indent}value: '{quoted}'"))
}

static STACKS: AtomicUsize = AtomicUsize::new(0);

impl Stack {
    /// Starts the upstream and Envoy, and waits until both answer.
    pub fn start(options: Options) -> Result<Stack, StartError> {
        // A port free when chosen can be taken before Envoy binds it (tests
        // run in parallel): such a start is tried again on other ports.
        let mut attempts = 1;
        loop {
            match Stack::start_once(options.clone()) {
                Err(StartError(why)) if attempts < 3 && why.contains("Address already in use") => {
                    attempts += 1;
                }
                started => return started,
            }
        }
    }

    fn start_once(options: Options) -> Result<Stack, StartError> {
        let envoy = envoy_binary();
        if !envoy.exists() {
            return Err(StartError(format!(
                "no Envoy at {} (run `make test`, which installs it)",
                envoy.display()
            )));
        }
        let wasm = options.wasm.clone().unwrap_or_else(wasm_path);
        if options.with_filter && !wasm.exists() {
            return Err(StartError(format!(
                "no filter build at {} (run `make test`, which builds it)",
                wasm.display()
            )));
        }
        let io = |e: std::io::Error| StartError(format!("cannot start the stand-in upstream: {e}"));
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(io)?,
        );
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").map_err(io)?;
        upstream.set_nonblocking(true).map_err(io)?;
        let upstream_port = upstream.local_addr().map_err(io)?.port();
        let upstream_log = Log::default();
        let upstream_handshakes = Handshakes::default();
        {
            let log = upstream_log.clone();
            let listener = {
                let _guard = runtime.enter();
                tokio::net::TcpListener::from_std(upstream).map_err(io)?
            };
            match &options.upstream_tls {
                Some(cert) => {
                    let config = crate::tls::server_config(cert)?;
                    let handshakes = upstream_handshakes.clone();
                    runtime.spawn(async move {
                        crate::tls::serve(listener, config, log, handshakes).await
                    });
                }
                None => {
                    runtime.spawn(async move { crate::stub::serve(listener, log).await });
                }
            }
        }

        let ports = (free_port(), free_port(), free_port());
        let (Ok(listener_port), Ok(admin_port), Ok(control_plane_port)) = ports else {
            return Err(StartError("no free loopback port".into()));
        };
        let n = STACKS.fetch_add(1, Ordering::SeqCst);
        let dir = workspace_root()
            .join("target/e2e")
            .join(format!("{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| StartError(format!("cannot create {}: {e}", dir.display())))?;
        let control_plane_socket = options
            .control_plane_socket
            .then(|| dir.join("control-plane.sock"));
        let yaml = envoy_config(
            &options,
            listener_port,
            admin_port,
            upstream_port,
            control_plane_port,
            control_plane_socket.as_deref(),
        )?;
        let channel_key = new_channel_key()?;
        let envoy_env = with_key(&options.env, &channel_key);
        let config_path = dir.join("envoy.yaml");
        let log_path = dir.join("envoy.log");
        std::fs::write(&config_path, yaml)
            .map_err(|e| StartError(format!("cannot write {}: {e}", config_path.display())))?;
        let mut command = Command::new(&envoy);
        // Only what the test gives reaches the filter, not the developer's shell.
        for inherited in [
            "KALGUARD_TOKEN_SECRET",
            "KALGUARD_AGENT_TOKEN",
            CHANNEL_KEY_VAR,
        ] {
            command.env_remove(inherited);
        }
        let data_dir = dir.join("data");
        let control_plane_env = options
            .control_plane
            .as_deref()
            .map(|env| with_key(env, &channel_key));
        let listen = match &control_plane_socket {
            Some(socket) => Listen::Unix(socket.clone()),
            None => Listen::Tcp(control_plane_port),
        };
        let control_plane = match &control_plane_env {
            Some(env) => Some(start_control_plane(env, &listen, &data_dir, &dir)?),
            None => None,
        };
        let child = command
            .arg("-c")
            .arg(&config_path)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                &options.concurrency.to_string(),
            ])
            .args(["-l", "warning", "--component-log-level", "wasm:info"])
            .arg("--log-path")
            .arg(&log_path)
            .envs(envoy_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| StartError(format!("cannot run {}: {e}", envoy.display())))?;
        let mut stack = Stack {
            control_plane,
            control_plane_env: control_plane_env.unwrap_or_default(),
            control_plane_socket,
            channel_key,
            dir,
            data_dir,
            listener_port,
            admin_port,
            upstream_port,
            control_plane_port,
            upstream_log,
            upstream_handshakes,
            envoy: child,
            log_path,
            _runtime: runtime,
        };
        stack.wait_ready()?;
        Ok(stack)
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.envoy.try_wait() {
                return Err(StartError(format!(
                    "Envoy exited ({status}) during start:\n{}",
                    self.envoy_log()
                )));
            }
            if raw_get(self.admin_port, "/ready")
                .is_some_and(|(status, body)| status == 200 && body.contains("LIVE"))
                && TcpStream::connect(("127.0.0.1", self.listener_port)).is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(StartError(format!(
            "Envoy not ready after 30 s:\n{}",
            self.envoy_log()
        )))
    }

    /// Waits for Envoy to exit by itself (for configurations it must reject).
    pub fn expect_exit(options: Options) -> Result<String, StartError> {
        match Stack::start(options) {
            Ok(stack) => Err(StartError(format!(
                "Envoy started and serves on port {}",
                stack.listener_port
            ))),
            Err(StartError(message)) => Ok(message),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.listener_port)
    }

    pub fn listener(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.listener_port))
    }

    /// Everything the upstream received so far.
    pub fn upstream_requests(&self) -> Vec<Recorded> {
        self.upstream_log
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }

    /// Every TLS handshake the upstream saw (`Options::upstream_tls`).
    pub fn upstream_handshakes(&self) -> Vec<Handshake> {
        self.upstream_handshakes
            .lock()
            .map(|handshakes| handshakes.clone())
            .unwrap_or_default()
    }

    /// Envoy's Prometheus stats.
    pub fn prometheus(&self) -> String {
        raw_get(self.admin_port, "/stats/prometheus")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The value of one Prometheus sample line (`name{labels}`), 0 when absent.
    pub fn metric(&self, sample: &str) -> u64 {
        self.prometheus()
            .lines()
            .find_map(|line| {
                line.strip_prefix(sample)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// A GET on Envoy's admin interface: the body, empty when it fails.
    pub fn admin(&self, path: &str) -> String {
        raw_get(self.admin_port, path)
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// A GET on the control plane with the stack's channel key, over TCP or
    /// its Unix socket: the body, empty when it fails or the stack runs none.
    pub fn control_plane(&self, path: &str) -> String {
        if self.control_plane.is_none() {
            return String::new();
        }
        self.control_plane_get(path, &[(KEY_HEADER, &self.channel_key)])
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// A GET on the control plane's address with exactly these headers:
    /// (status, body); `None` when nothing answers.
    pub fn control_plane_get(&self, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
        match &self.control_plane_socket {
            Some(socket) => unix_get(socket, path, headers),
            None => http_get(self.control_plane_port, path, headers),
        }
    }

    /// Stops the control plane (SIGKILL), leaving its address free.
    pub fn stop_control_plane(&mut self) {
        if let Some(mut control_plane) = self.control_plane.take() {
            let _ = control_plane.kill();
            let _ = control_plane.wait();
        }
    }

    /// Starts the control plane again, as it was first started, on the same
    /// address and data directory (a new process: a new epoch).
    pub fn restart_control_plane(&mut self) -> Result<(), StartError> {
        self.stop_control_plane();
        let listen = match &self.control_plane_socket {
            Some(socket) => Listen::Unix(socket.clone()),
            None => Listen::Tcp(self.control_plane_port),
        };
        self.control_plane = Some(start_control_plane(
            &with_key(&self.control_plane_env, &self.channel_key),
            &listen,
            &self.data_dir,
            &self.dir,
        )?);
        Ok(())
    }

    /// The Envoy process (for its memory figures in `/proc`).
    pub fn envoy_pid(&self) -> u32 {
        self.envoy.id()
    }

    /// The control plane process (to signal it: SIGHUP syncs the license now).
    pub fn control_plane_pid(&self) -> Option<u32> {
        self.control_plane.as_ref().map(Child::id)
    }

    /// What Envoy logged (the filter's log lines included).
    pub fn envoy_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if let Some(control_plane) = self.control_plane.as_mut() {
            let _ = control_plane.kill();
            let _ = control_plane.wait();
        }
    }
}

/// The channel key's variable and header (`kalguard_filter::channel`).
const CHANNEL_KEY_VAR: &str = kalguard_filter::channel::ENV_VAR;
const KEY_HEADER: &str = kalguard_filter::channel::KEY_HEADER;

/// `env` with `KALGUARD_CHANNEL_KEY=key` added, unless it sets one already.
fn with_key(env: &[(String, String)], key: &str) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    if !env.iter().any(|(name, _)| name == CHANNEL_KEY_VAR) {
        env.push((CHANNEL_KEY_VAR.to_owned(), key.to_owned()));
    }
    env
}

/// Where a stack's control plane listens.
enum Listen {
    Tcp(u16),
    Unix(PathBuf),
}

/// A GET to Envoy's admin (or any loopback port): (status, body).
fn raw_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get(port, path, &[])
}

/// A GET to a loopback port with these headers: (status, body).
fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let mut request = agent.get(&format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    match request.call() {
        Ok(response) => {
            let status = response.status();
            Some((status, response.into_string().ok()?))
        }
        Err(ureq::Error::Status(status, response)) => {
            Some((status, response.into_string().unwrap_or_default()))
        }
        Err(_) => None,
    }
}

/// A GET over a Unix socket with these headers (HTTP/1.1, one request per
/// connection): (status, body).
pub fn unix_get(socket: &Path, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: kalguard\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    let chunked = head
        .lines()
        .any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Some((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Starts `kalguard serve` on `listen` and waits for its `/healthz`.
fn start_control_plane(
    env: &[(String, String)],
    listen: &Listen,
    data_dir: &Path,
    dir: &Path,
) -> Result<Child, StartError> {
    let binary = control_plane_binary();
    if !binary.exists() {
        return Err(StartError(format!(
            "no control plane at {} (run `make test`, which builds it)",
            binary.display()
        )));
    }
    let log_path = dir.join("control-plane.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| StartError(format!("{}: {e}", log_path.display())))?;
    let mut command = Command::new(&binary);
    for inherited in [
        "KALGUARD_TOKEN_SECRET",
        "KALGUARD_AGENT_TOKEN",
        "KALGUARD_API_KEY",
        "KALGUARD_CLOUD_URL",
        "KALGUARD_DATA_DIR",
        "KALGUARD_LISTEN",
        CHANNEL_KEY_VAR,
    ] {
        command.env_remove(inherited);
    }
    let listen_arg = match listen {
        Listen::Tcp(port) => format!("127.0.0.1:{port}"),
        Listen::Unix(socket) => format!("unix:{}", socket.display()),
    };
    let healthy = || match listen {
        Listen::Tcp(port) => raw_get(*port, "/healthz"),
        Listen::Unix(socket) => unix_get(socket, "/healthz", &[]),
    };
    let mut child = command
        .args(["serve", "--listen", &listen_arg])
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| StartError(format!("{}: {e}", log_path.display())))?,
        )
        .stderr(log)
        .spawn()
        .map_err(|e| StartError(format!("cannot run {}: {e}", binary.display())))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if healthy().is_some_and(|(status, _)| status == 200) {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(StartError(format!(
                "control plane exited ({status}):\n{log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Err(StartError("control plane not healthy after 20 s".into()))
}
