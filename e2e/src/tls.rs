//! A stand-in HTTPS provider: the [`stub`](crate::stub) behind TLS, with a
//! test PKI made at test time, so tests can prove that Envoy originates TLS
//! the way a mesh does (certificate chain checked, name checked, SNI sent).
//!
//! The certificates come from the `openssl` command line (present wherever
//! Envoy's tests run; never used by the filter): a trusted CA, an untrusted
//! one, and leaf certificates for any name from either. The server records
//! every handshake, the SNI the client sent and whether it completed, so a
//! test can tell a refused certificate from a connection never attempted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::stack::StartError;
use crate::stub::Log;

/// One certificate authority of the test PKI: its certificate and key files.
#[derive(Clone, Debug)]
pub struct Authority {
    pub cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

/// A server certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs `openssl` with these arguments; the error carries its stderr.
fn openssl(args: &[&str]) -> Result<(), StartError> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| StartError(format!("cannot run openssl (needed for the test PKI): {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(StartError(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

fn path_str(path: &Path) -> Result<&str, StartError> {
    path.to_str()
        .ok_or_else(|| StartError(format!("{} is not UTF-8", path.display())))
}

impl Authority {
    /// A new self-signed CA named `name`, its files under `dir/name`.
    pub fn new(dir: &Path, name: &str) -> Result<Authority, StartError> {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| StartError(format!("cannot create {}: {e}", dir.display())))?;
        let cert = dir.join("ca.pem");
        let key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            path_str(&key)?,
            "-out",
            path_str(&cert)?,
        ])?;
        Ok(Authority { cert, key, dir })
    }

    /// A server certificate for the DNS name `name`, signed by this CA.
    pub fn issue(&self, name: &str) -> Result<ServerCert, StartError> {
        let stem = self.dir.join(name);
        let key = stem.with_extension("key");
        let csr = stem.with_extension("csr");
        let cert = stem.with_extension("pem");
        let extensions = stem.with_extension("ext");
        std::fs::write(
            &extensions,
            format!(
                "subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .map_err(|e| StartError(format!("cannot write {}: {e}", extensions.display())))?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            path_str(&key)?,
            "-out",
            path_str(&csr)?,
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            path_str(&csr)?,
            "-CA",
            path_str(&self.cert)?,
            "-CAkey",
            path_str(&self.key)?,
            "-set_serial",
            "2",
            "-extfile",
            path_str(&extensions)?,
            "-out",
            path_str(&cert)?,
        ])?;
        Ok(ServerCert { cert, key })
    }
}

/// One TLS handshake the stand-in saw: the SNI the client sent (if any), and
/// `None` when it completed, else why not.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub server_name: Option<String>,
    pub failure: Option<String>,
}

/// Every handshake so far, shared with whoever started the server.
pub type Handshakes = Arc<Mutex<Vec<Handshake>>>;

/// The rustls server configuration presenting `cert` (HTTP/1.1, no ALPN).
pub fn server_config(cert: &ServerCert) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let pem_error = |path: &Path, e: rustls::pki_types::pem::Error| {
        StartError(format!("{}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(&cert.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(&cert.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&cert.key).map_err(|e| pem_error(&cert.key, e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
    .map_err(|e| StartError(format!("TLS server configuration: {e}")))?;
    Ok(Arc::new(config))
}

/// Accepts TCP connections and completes TLS on each; a connection whose
/// handshake fails is recorded and dropped, never handed to the HTTP server.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    handshakes: Handshakes,
}

impl TlsListener {
    fn record(&self, handshake: Handshake) {
        if let Ok(mut handshakes) = self.handshakes.lock() {
            handshakes.push(handshake);
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.tcp.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let start = match tokio_rustls::LazyConfigAcceptor::new(
                rustls::server::Acceptor::default(),
                tcp,
            )
            .await
            {
                Ok(start) => start,
                Err(e) => {
                    self.record(Handshake {
                        server_name: None,
                        failure: Some(format!("no ClientHello: {e}")),
                    });
                    continue;
                }
            };
            let server_name = start.client_hello().server_name().map(str::to_owned);
            match start.into_stream(self.config.clone()).await {
                Ok(stream) => {
                    self.record(Handshake {
                        server_name,
                        failure: None,
                    });
                    return (stream, peer);
                }
                Err(e) => self.record(Handshake {
                    server_name,
                    failure: Some(e.to_string()),
                }),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves the stub over TLS on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    log: Log,
    handshakes: Handshakes,
) -> std::io::Result<()> {
    let listener = TlsListener {
        tcp: listener,
        config,
        handshakes,
    };
    axum::serve(listener, crate::stub::app(log)).await
}
