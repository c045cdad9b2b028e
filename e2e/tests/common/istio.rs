//! The Envoy configuration istiod builds for a sidecar from the manifests in
//! `deploy/istio/` (what is reproduced and what is not: `mesh_istio.rs`), and
//! the switch that runs the end-to-end suites in that shape
//! (`KALGUARD_E2E_SHAPE=istio`, docs/testing.md).

use kalguard_e2e::stack::Options;
use kalguard_e2e::tls::Authority;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const PROVIDER: &str = "api.openai.com";

/// A manifest file of deploy/istio/, every document in it as JSON.
fn manifests(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/istio")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split("\n---\n")
        .map(|document| {
            serde_yaml::from_str(document).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

fn manifest(file: &str, kind: &str) -> Value {
    manifests(file)
        .into_iter()
        .find(|m| m["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/istio/{file}"))
}

/// istiod's `failStrategy` → Envoy's `failure_policy` (Istio ≥ 1.25).
fn failure_policy(fail_strategy: &Value) -> &'static str {
    match fail_strategy.as_str() {
        None | Some("FAIL_CLOSE") => "FAIL_CLOSED",
        Some("FAIL_OPEN") => "FAIL_OPEN",
        Some("FAIL_RELOAD") => "FAIL_RELOAD",
        Some(other) => panic!("unknown failStrategy {other}"),
    }
}

/// The HTTP filter istiod makes of the WasmPlugin, with the code at the
/// stack's wasm placeholder (istio-agent's local copy of the image).
fn wasm_filter(plugin: &Value, plugin_config: &str) -> Value {
    let spec = &plugin["spec"];
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    let mut key_values = json!({
        "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1",
    });
    if let Some(policy) = spec["imagePullPolicy"].as_str() {
        key_values["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = json!(policy);
    }
    let mut host_env_keys = Vec::new();
    for env in spec["vmConfig"]["env"].as_array().into_iter().flatten() {
        match env["valueFrom"].as_str() {
            Some("HOST") => host_env_keys.push(env["name"].clone()),
            _ => key_values[env["name"].as_str().unwrap()] = env["value"].clone(),
        }
    }
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": spec["pluginName"],
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config,
                },
                "failure_policy": failure_policy(&spec["failStrategy"]),
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": "target/wasm32-wasip1/release/kalguard_filter.wasm"}},
                    "environment_variables": {"key_values": key_values, "host_env_keys": host_env_keys},
                },
            },
        },
    })
}

/// The outbound cluster istiod makes of the ServiceEntry and DestinationRule
/// for `port`, at the stand-in's address, trusting `ca` instead of the
/// proxy image's roots.
fn provider_cluster(service_entry: &Value, rule: &Value, port: u64, ca: &Path) -> Value {
    let host = service_entry["spec"]["hosts"][0].as_str().unwrap();
    assert_eq!(rule["spec"]["host"], host);
    let tls = rule["spec"]["trafficPolicy"]["portLevelSettings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|setting| setting["port"]["number"] == port)
        .map(|setting| &setting["tls"])
        .unwrap_or_else(|| panic!("no TLS settings for port {port}"));
    assert_eq!(tls["mode"], "SIMPLE");
    assert_ne!(tls["insecureSkipVerify"], true);
    let names: Vec<Value> = tls["subjectAltNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| json!({"san_type": "DNS", "matcher": {"exact": name}}))
        .collect();
    assert!(
        !names.is_empty(),
        "the DestinationRule must check the provider's name"
    );
    json!({
        "name": format!("outbound|{port}||{host}"),
        "type": "STATIC",
        "connect_timeout": "10s",
        "load_assignment": {
            "cluster_name": format!("outbound|{port}||{host}"),
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": "UPSTREAM_PORT"}}}}]}],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": tls["sni"],
                "common_tls_context": {"validation_context": {
                    "trusted_ca": {"filename": ca.display().to_string()},
                    "match_typed_subject_alt_names": names,
                }},
            },
        },
    })
}

/// The cluster the EnvoyFilter adds, its socket at the stack's placeholder.
fn control_plane_cluster(envoy_filter: &Value, plugin: &Value) -> Value {
    let patch = envoy_filter["spec"]["configPatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|patch| patch["applyTo"] == "CLUSTER" && patch["patch"]["operation"] == "ADD")
        .expect("the EnvoyFilter adds a cluster");
    assert_eq!(patch["match"]["context"], "SIDECAR_OUTBOUND");
    assert_eq!(patch["patch"]["operation"], "ADD");
    let cluster = patch["patch"]["value"].clone();
    assert_eq!(
        cluster["name"], plugin["spec"]["pluginConfig"]["control_plane_cluster"],
        "the filter must call the cluster the EnvoyFilter adds"
    );
    assert_eq!(
        plugin["spec"]["selector"]["matchLabels"],
        envoy_filter["spec"]["workloadSelector"]["labels"],
        "the filter and its cluster must land on the same sidecars"
    );
    cluster
}

/// The listener fields the EnvoyFilter merges into the outbound listener on
/// `port`, as YAML lines at the listener's indentation.
fn listener_merge(envoy_filter: &Value, port: u64) -> String {
    let mut lines = String::new();
    for patch in envoy_filter["spec"]["configPatches"].as_array().unwrap() {
        if patch["applyTo"] != "LISTENER" {
            continue;
        }
        assert_eq!(patch["match"]["context"], "SIDECAR_OUTBOUND");
        assert_eq!(patch["match"]["listener"]["portNumber"], port);
        assert_eq!(patch["patch"]["operation"], "MERGE");
        for (field, value) in patch["patch"]["value"].as_object().unwrap() {
            lines.push_str(&format!("    {field}: {value}\n"));
        }
    }
    lines
}

/// Protobuf merge as istiod applies a MERGE patch (`istio.io/istio/pkg/proto/merge`),
/// on the JSON form: messages merge field by field, lists append, scalars
/// and map entries (the fields named in `MAPS`) are replaced.
fn proto_merge(dst: &mut Value, src: &Value) {
    const MAPS: [&str; 1] = ["typed_extension_protocol_options"];
    match (dst, src) {
        (Value::Object(dst), Value::Object(src)) => {
            for (field, value) in src {
                match dst.get_mut(field) {
                    Some(Value::Object(map)) if MAPS.contains(&field.as_str()) => {
                        for (key, entry) in value.as_object().unwrap() {
                            map.insert(key.clone(), entry.clone());
                        }
                    }
                    Some(existing) => proto_merge(existing, value),
                    None => {
                        dst.insert(field.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(dst), Value::Array(src)) => dst.extend(src.iter().cloned()),
        (dst, src) => *dst = src.clone(),
    }
}

/// The EnvoyFilter's MERGE patches of `apply_to`, each checked to target the
/// outbound side (`match` as `is_target` says).
fn merges<'a>(
    envoy_filter: &'a Value,
    apply_to: &str,
    is_target: impl Fn(&Value) -> bool,
) -> Vec<&'a Value> {
    envoy_filter["spec"]["configPatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|patch| patch["applyTo"] == apply_to && patch["patch"]["operation"] == "MERGE")
        .inspect(|patch| assert!(is_target(&patch["match"]), "unmodelled match: {patch}"))
        .map(|patch| &patch["patch"]["value"])
        .collect()
}

/// The provider's cluster with the EnvoyFilter's cluster merges applied.
fn merged_provider_cluster(envoy_filter: &Value, mut cluster: Value, port: u64) -> Value {
    let targets = |m: &Value| {
        m["context"] == "SIDECAR_OUTBOUND"
            && m["cluster"]["service"] == PROVIDER
            && m["cluster"]["portNumber"] == port
    };
    for value in merges(envoy_filter, "CLUSTER", targets) {
        proto_merge(&mut cluster, value);
    }
    cluster
}

/// The HTTP connection manager fields the EnvoyFilter merges into the
/// outbound listener on `port`, as YAML lines at the manager's indentation.
/// istiod merges into a manager that sets none of them (asserted against
/// what this file builds).
fn connection_manager_merge(envoy_filter: &Value, port: u64) -> String {
    const BUILT: [&str; 8] = [
        "stat_prefix",
        "use_remote_address",
        "normalize_path",
        "merge_slashes",
        "path_with_escaped_slashes_action",
        "upgrade_configs",
        "route_config",
        "http_filters",
    ];
    let targets = |m: &Value| {
        m["context"] == "SIDECAR_OUTBOUND"
            && m["listener"]["portNumber"] == port
            && m["listener"]["filterChain"]["filter"]["name"]
                == "envoy.filters.network.http_connection_manager"
    };
    let mut lines = String::new();
    for value in merges(envoy_filter, "NETWORK_FILTER", targets) {
        let typed = value["typed_config"].as_object().unwrap();
        assert!(typed["@type"]
            .as_str()
            .unwrap()
            .ends_with(".HttpConnectionManager"));
        for (field, value) in typed.iter().filter(|(field, _)| *field != "@type") {
            assert!(
                !BUILT.contains(&field.as_str()),
                "a merge into `{field}`, which istiod sets, is not modelled"
            );
            lines.push_str(&format!("          {field}: {value}\n"));
        }
    }
    lines
}

/// The sidecar's bootstrap stats configuration: Istio's inclusion list (the
/// prefixes pilot-agent keeps, `wasm` among them) with the EnvoyFilter's
/// bootstrap merges applied.
fn stats_config(envoy_filter: &Value) -> Value {
    let prefixes = [
        "reporter=",
        "cluster_manager",
        "listener_manager",
        "server",
        "cluster.xds-grpc",
        "wasm",
        "component",
    ];
    let mut bootstrap = json!({"stats_config": {
        "use_all_default_tags": false,
        "stats_matcher": {"inclusion_list": {"patterns":
            prefixes.iter().map(|p| json!({"prefix": p})).collect::<Vec<_>>()}},
    }});
    for value in merges(envoy_filter, "BOOTSTRAP", |m| m.is_null()) {
        proto_merge(&mut bootstrap, value);
    }
    bootstrap["stats_config"].take()
}

/// The mesh's `pathNormalization`, as istiod sets it on every HTTP connection
/// manager.
#[derive(Clone, Copy)]
pub enum PathNormalization {
    /// Istio's default: dot segments resolved, nothing else.
    Base,
    /// docs/deployment.md's setting: `//` merged, `%2F` and `%5C` decoded too.
    DecodeAndMergeSlashes,
}

impl PathNormalization {
    fn hcm_fields(self) -> &'static str {
        match self {
            PathNormalization::Base => "normalize_path: true\n          path_with_escaped_slashes_action: KEEP_UNCHANGED",
            PathNormalization::DecodeAndMergeSlashes => "normalize_path: true\n          merge_slashes: true\n          path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD",
        }
    }
}

/// The whole sidecar configuration, with the stack's placeholders; the
/// filter's configuration is the WasmPlugin's `pluginConfig`, or
/// `plugin_config` made fit for Istio ([`for_istio`]).
/// `host_env` are more `vmConfig.env` entries with `valueFrom: HOST`, as an
/// operator adds them to the WasmPlugin to pass Envoy's environment on.
pub fn sidecar_yaml(
    ca: &Path,
    normalization: PathNormalization,
    plugin_config: Option<&str>,
    host_env: &[String],
) -> String {
    let mut plugin = manifest("wasmplugin.yaml", "WasmPlugin");
    let env = plugin["spec"]["vmConfig"]["env"].as_array_mut().unwrap();
    for name in host_env {
        if !env.iter().any(|entry| entry["name"] == name.as_str()) {
            env.push(json!({"name": name, "valueFrom": "HOST"}));
        }
    }
    let envoy_filter = manifest("envoyfilter.yaml", "EnvoyFilter");
    let service_entry = manifest("provider-openai.yaml", "ServiceEntry");
    let rule = manifest("provider-openai.yaml", "DestinationRule");
    let port = plugin["spec"]["match"][0]["ports"][0]["number"]
        .as_u64()
        .unwrap();
    assert_eq!(plugin["spec"]["match"][0]["mode"], "CLIENT");
    let service_port = &service_entry["spec"]["ports"][0];
    assert_eq!(
        service_port["number"], port,
        "the WasmPlugin must match the provider's plain port"
    );
    assert_eq!(service_port["protocol"], "HTTP");

    let plugin_config = match plugin_config {
        Some(text) => for_istio(text, &plugin),
        None => plugin["spec"]["pluginConfig"].to_string(),
    };
    let cluster_name = format!("outbound|{port}||{PROVIDER}");
    // JSON is YAML: each generated piece goes in as one flow value. The
    // placeholders are the stack's (ports, socket), outside JSON strings.
    let flow = |value: &Value| value.to_string();
    let provider = flow(&merged_provider_cluster(
        &envoy_filter,
        provider_cluster(&service_entry, &rule, port, ca),
        port,
    ))
    .replace(r#""port_value":"UPSTREAM_PORT""#, "port_value: 18000");
    let control_plane = flow(&control_plane_cluster(&envoy_filter, &plugin)).replace(
        r#"{"pipe":{"path":"/run/kalguard/cp.sock"}}"#,
        "{ socket_address: { address: 127.0.0.1, port_value: 9292 } }",
    );
    let virtual_host = json!({
        "name": format!("{PROVIDER}:{port}"),
        "domains": [PROVIDER, format!("{PROVIDER}:{port}")],
        "routes": [{"name": "default", "match": {"prefix": "/"},
                    "route": {"cluster": cluster_name, "timeout": "0s"}}],
    });
    let block_all = json!({
        "name": "block_all",
        "domains": ["*"],
        "routes": [{"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}],
    });
    format!(
        r#"admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 9901 }}
stats_config: {stats}
static_resources:
  listeners:
  - name: 0.0.0.0_{port}
    address:
      socket_address: {{ address: 127.0.0.1, port_value: 10000 }}
{listener_merge}    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound_0.0.0.0_{port}
          use_remote_address: false
          {normalization}
          upgrade_configs: [{{ upgrade_type: websocket }}]
{connection_manager_merge}          route_config:
            name: "{port}"
            validate_clusters: false
            virtual_hosts: [{virtual_host}, {block_all}]
          http_filters:
          - {wasm}
          - name: envoy.filters.http.fault
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault }}
          - name: envoy.filters.http.cors
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors }}
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - {provider}
  - {control_plane}
"#,
        virtual_host = flow(&virtual_host),
        block_all = flow(&block_all),
        wasm = flow(&wasm_filter(&plugin, &plugin_config)),
        listener_merge = listener_merge(&envoy_filter, port),
        connection_manager_merge = connection_manager_merge(&envoy_filter, port),
        stats = flow(&stats_config(&envoy_filter)),
        normalization = normalization.hcm_fields(),
    )
}

pub fn pki_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e/pki")
        .join(format!("{}-istio-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test's plugin configuration as the WasmPlugin would carry it: the same,
/// except `hold_request_headers`, which takes the WasmPlugin's value (Istio
/// sets no `allow_on_headers_stop_iteration`, so headers cannot be held). A
/// text that is not a JSON object goes as it is (the filter judges it).
fn for_istio(text: &str, plugin: &Value) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut config)) => {
            let hold = &plugin["spec"]["pluginConfig"]["hold_request_headers"];
            config.insert("hold_request_headers".into(), hold.clone());
            Value::Object(config).to_string()
        }
        _ => text.to_owned(),
    }
}

/// The plugin configuration of the repository's envoy.yaml: what a test that
/// sets none runs with in the demo shape.
fn demo_plugin_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = yaml
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("value: '"))
        .expect("envoy.yaml's plugin configuration line");
    line.trim_end_matches('\'').replace("''", "'")
}

/// Whether `KALGUARD_E2E_SHAPE=istio` asks for the Istio-shaped sidecar.
pub fn active() -> bool {
    match std::env::var("KALGUARD_E2E_SHAPE").as_deref() {
        Ok("istio") => true,
        Ok("demo") | Err(_) => false,
        Ok(other) => panic!("KALGUARD_E2E_SHAPE={other}: expected `istio` or `demo`"),
    }
}

static SIDECARS: AtomicUsize = AtomicUsize::new(0);

/// A test's stack options in the Istio shape: the sidecar's configuration
/// with the test's plugin configuration (or envoy.yaml's) and the names of
/// its Envoy environment as HOST entries of `vmConfig.env`, the stand-in
/// provider behind TLS as `api.openai.com`, the control plane as the test
/// asks (its cluster is the EnvoyFilter's, at the stack's address).
pub fn shaped(options: Options) -> Options {
    assert!(
        options.with_filter && options.wasm.is_none(),
        "the Istio shape runs the KalGuard filter in the sidecar's own configuration"
    );
    let n = SIDECARS.fetch_add(1, Ordering::SeqCst);
    let ca = Authority::new(&pki_dir(&format!("shape-{n}")), "kalguard-test-ca").unwrap();
    let cert = ca.issue(PROVIDER).unwrap();
    let plugin_config = options
        .plugin_config
        .clone()
        .unwrap_or_else(demo_plugin_config);
    let host_env: Vec<String> = options.env.iter().map(|(name, _)| name.clone()).collect();
    Options {
        envoy_yaml: Some(sidecar_yaml(
            &ca.cert,
            PathNormalization::DecodeAndMergeSlashes,
            Some(&plugin_config),
            &host_env,
        )),
        upstream_tls: Some(cert),
        plugin_config: None,
        ..options
    }
}
