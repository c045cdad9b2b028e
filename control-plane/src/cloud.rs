//! The Cloud's HTTP API (`KALGUARD_CLOUD_URL`): license validation and usage
//! reports, with errors sorted by what the caller should do about them.

use crate::events::UsageEvent;
use kalguard_wire::cloud::{
    LicenseAnswer as ValidateAnswer, UsageAnswer as ReportAnswer, UsageReport,
};
use rand::Rng;
use reqwest::StatusCode;
use std::time::Duration;

/// What went wrong talking to the Cloud. Messages name the URL, never the key.
#[derive(Debug)]
pub enum CloudError {
    /// 401/403 or `valid: false`: the API key or license is refused. Not retried.
    Refused { url: String, why: String },
    /// Network error, timeout, 5xx, 429 or an unreadable answer: retried with backoff.
    Unavailable { url: String, why: String },
    /// Another 4xx: this exact request can never succeed.
    Rejected { url: String, why: String },
}

impl std::fmt::Display for CloudError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { url, why } => write!(
                f,
                "the Cloud refused the API key at {url} ({why}): check KALGUARD_API_KEY"
            ),
            Self::Unavailable { url, why } => write!(f, "the Cloud at {url} is unavailable: {why}"),
            Self::Rejected { url, why } => {
                write!(f, "the Cloud at {url} rejected the request: {why}")
            }
        }
    }
}

impl std::error::Error for CloudError {}

impl CloudError {
    /// The error with every copy of `secret` in the Cloud's words masked: they
    /// reach `/healthz` and the log, and a Cloud may echo what it was sent.
    fn hiding(self, secret: &str) -> Self {
        let hide = |why: String| why.replace(secret, "[KALGUARD_API_KEY]");
        match self {
            Self::Refused { url, why } => Self::Refused {
                url,
                why: hide(why),
            },
            Self::Unavailable { url, why } => Self::Unavailable {
                url,
                why: hide(why),
            },
            Self::Rejected { url, why } => Self::Rejected {
                url,
                why: hide(why),
            },
        }
    }
}

/// Why a Cloud client cannot be built from `KALGUARD_CLOUD_URL`. Messages
/// never repeat credentials found in the URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("KALGUARD_CLOUD_URL must not carry credentials (user:password@); the API key goes in KALGUARD_API_KEY")]
    Credentials,
    #[error("KALGUARD_CLOUD_URL must start with https:// or http://, got {0:?}")]
    Scheme(String),
    #[error("cannot build the HTTPS client for {url}: {source}")]
    Build { url: String, source: reqwest::Error },
}

/// What `GET /api/v1/license/watch` answers: the organisation's license version.
pub use kalguard_wire::cloud::WatchAnswer;

/// Longest wait for a watch answer; the Cloud holds one for 25 s by default.
const WATCH_TIMEOUT: Duration = Duration::from_secs(330);

/// A client for one Cloud and one API key.
pub struct CloudClient {
    http: reqwest::Client,
    api_key: String,
    validate_url: String,
    report_url: String,
    watch_url: String,
    /// The base URL, for the calls that name their own path ([`Self::call`]).
    base: String,
}

impl CloudClient {
    pub fn new(base_url: &str, api_key: String) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/');
        let authority = base
            .split_once("://")
            .map_or(base, |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default();
        if authority.contains('@') {
            // `/healthz` and the logs show this URL: a credential has no place in it.
            return Err(ClientError::Credentials);
        }
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ClientError::Scheme(base_url.to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!(
                "kalguard-control-plane/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|source| ClientError::Build {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            api_key,
            validate_url: format!("{base}/api/v1/license/validate"),
            report_url: format!("{base}/api/v1/usage/report"),
            watch_url: format!("{base}/api/v1/license/watch"),
            base: base.to_owned(),
        })
    }

    /// `POST /api/v1/license/validate`. A `valid: false` answer is [`CloudError::Refused`].
    pub async fn validate(&self) -> Result<ValidateAnswer, CloudError> {
        let url = &self.validate_url;
        let response = self
            .http
            .post(url)
            .header("x-api-key", &self.api_key)
            .send()
            .await
            .map_err(|e| unavailable(url, &e))?;
        let answer: ValidateAnswer = read_answer(url, response)
            .await
            .map_err(|e| e.hiding(&self.api_key))?;
        if !answer.valid {
            let why = answer
                .message
                .clone()
                .unwrap_or_else(|| "license answer has valid: false".to_owned());
            return Err(CloudError::Refused {
                url: url.clone(),
                why,
            }
            .hiding(&self.api_key));
        }
        Ok(answer)
    }

    /// `GET /api/v1/license/watch?version=N`: held by the Cloud until the license
    /// changes. `None` when the Cloud has no such channel (404): the periodic sync
    /// is then the only one.
    pub async fn watch(&self, seen: Option<i64>) -> Result<Option<WatchAnswer>, CloudError> {
        let url = &self.watch_url;
        let mut request = self
            .http
            .get(url)
            .header("x-api-key", &self.api_key)
            .timeout(WATCH_TIMEOUT);
        if let Some(version) = seen {
            request = request.query(&[("version", version)]);
        }
        let response = request.send().await.map_err(|e| unavailable(url, &e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        read_answer(url, response).await.map(Some)
    }

    /// `POST /api/v1/usage/report` with a batch ID (a retried batch is counted once).
    pub async fn report(
        &self,
        batch_id: &str,
        events: &[UsageEvent],
    ) -> Result<ReportAnswer, CloudError> {
        let url = &self.report_url;
        let response = self
            .http
            .post(url)
            .header("x-api-key", &self.api_key)
            .json(&UsageReport {
                batch_id: batch_id.to_owned(),
                events: events.to_vec(),
            })
            .send()
            .await
            .map_err(|e| unavailable(url, &e))?;
        // A 2xx means accepted, even from a server whose answer we cannot read.
        match read_answer::<ReportAnswer>(url, response)
            .await
            .map_err(|e| e.hiding(&self.api_key))
        {
            Err(CloudError::Unavailable { why, .. }) if why.starts_with(UNREADABLE) => {
                Ok(ReportAnswer::default())
            }
            other => other,
        }
    }
}

impl CloudClient {
    /// `method` on `path` (under the base URL) with the API key and a JSON
    /// `body`, answered as the other calls are; `timeout` for calls the Cloud
    /// holds open (the approvals relay's polls).
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
        timeout: Duration,
    ) -> Result<T, CloudError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .header("x-api-key", &self.api_key)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| unavailable(&url, &e))?;
        read_answer(&url, response)
            .await
            .map_err(|e| e.hiding(&self.api_key))
    }
}

const UNREADABLE: &str = "unreadable answer";

fn unavailable(url: &str, error: &reqwest::Error) -> CloudError {
    let why = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        error.to_string()
    };
    CloudError::Unavailable {
        url: url.to_owned(),
        why,
    }
}

/// Most bytes of a Cloud answer read. The largest answer, a license with its
/// revoked tokens, is far below it: one over it is from a broken or hostile
/// Cloud, and reading it whole would let that Cloud fill this process's memory.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Why an answer's body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed while the body arrived.
    Read(reqwest::Error),
    /// The body is longer than the reader allowed; nothing past it was read.
    TooLong { limit: usize },
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => write!(f, "{e}"),
            Self::TooLong { limit } => write!(f, "answer longer than {limit} bytes"),
        }
    }
}

/// Reads an answer's body, at most `limit` bytes of it: a peer (the Cloud, an
/// OTLP collector) that sends more gets [`BodyError::TooLong`] instead of this
/// process's memory. A declared length over the limit fails before reading.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLong { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLong { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_answer<T: serde::de::DeserializeOwned>(
    url: &str,
    response: reqwest::Response,
) -> Result<T, CloudError> {
    let status = response.status();
    let body = match read_body(response, MAX_ANSWER_BYTES).await {
        Ok(body) => body,
        Err(BodyError::Read(e)) => return Err(unavailable(url, &e)),
        Err(too_long) => {
            return Err(CloudError::Unavailable {
                url: url.to_owned(),
                why: format!("{UNREADABLE} (HTTP {status}): {too_long}"),
            })
        }
    };
    let url = url.to_owned();
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| CloudError::Unavailable {
            url,
            why: format!("{UNREADABLE} (HTTP {status}): {e}"),
        });
    }
    let why = format!("HTTP {status}: {}", excerpt(&body));
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CloudError::Refused { url, why },
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
            CloudError::Unavailable { url, why }
        }
        s if s.is_server_error() => CloudError::Unavailable { url, why },
        _ => CloudError::Rejected { url, why },
    })
}

/// The start of an error body, on one line, for a log message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.is_empty() {
        "empty body".to_owned()
    } else {
        line
    }
}

/// Longest a relay's call to the Cloud may take (a filing, a report, a
/// settle); the approvals and pins relays share it.
pub const RELAY_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest time between two of a relay's calls that went well: a Cloud
/// that answers a poll at once though asked to hold it (one that ignores
/// `wait`) is asked again only this often, and a pin book that changes all
/// the time (a server that lists new definitions on every call) is reported
/// only this often, never in a tight loop.
pub const RELAY_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Backoff between a relay's failed calls to the Cloud.
pub const RELAY_RETRY_BASE: Duration = Duration::from_millis(500);
pub const RELAY_RETRY_CAP: Duration = Duration::from_secs(10);

/// Exponential backoff with jitter: attempt 1 waits about `base`, each next
/// attempt twice as long, never more than `cap`; the wait is drawn in
/// [50 %, 100 %] of that so restarted sidecars do not retry in lockstep.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let full = base.saturating_mul(1 << exponent).min(cap);
    let millis = u64::try_from(full.as_millis()).unwrap_or(u64::MAX).max(2);
    Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clouds_words_never_carry_the_api_key() {
        let echoed = CloudError::Refused {
            url: "https://cloud".into(),
            why: "HTTP 401: unknown key kg_live_secret".into(),
        }
        .hiding("kg_live_secret")
        .to_string();
        assert!(!echoed.contains("kg_live_secret"), "{echoed}");
        assert!(echoed.contains("[KALGUARD_API_KEY]"), "{echoed}");
    }

    #[test]
    fn a_cloud_url_with_credentials_is_refused() {
        let error = CloudClient::new("https://u:p@cloud.example/x", "k".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("must not carry credentials"), "{error}");
        assert!(!error.contains("u:p"), "{error}");
        let schemeless = CloudClient::new("u:p@cloud.example", "k".into())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!schemeless.contains("u:p"), "{schemeless}");
        assert!(CloudClient::new("https://cloud.example/a@b", "k".into()).is_ok());
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops_at_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(1, base, cap);
            assert!(first >= Duration::from_millis(50) && first <= base);
            let third = backoff(3, base, cap);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(backoff(30, base, cap) <= cap);
        }
    }

    /// A stand-in peer on loopback: every connection gets `head`, then
    /// `chunks` chunks of `chunk` (HTTP/1.1 chunked when `head` says so).
    async fn peer(head: &'static str, chunk: Vec<u8>, chunks: usize) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let chunk = chunk.clone();
                tokio::spawn(async move {
                    let mut read = [0u8; 4096];
                    let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut read).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                    let framed =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                    for _ in 0..chunks {
                        if socket.write_all(&framed).await.is_err() {
                            return;
                        }
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        base
    }

    const CHUNKED: &str =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit_and_no_further() {
        let base = peer(CHUNKED, vec![b' '; 1024], 64).await;
        let whole = reqwest::get(&base).await.unwrap();
        assert_eq!(read_body(whole, 64 * 1024).await.unwrap().len(), 64 * 1024);
        let cut = reqwest::get(&base).await.unwrap();
        assert!(matches!(
            read_body(cut, 4096).await,
            Err(BodyError::TooLong { limit: 4096 })
        ));
        // A declared length over the limit fails at once: the peer here never
        // sends the gigabyte it announces, so reading would wait for it.
        let declared = peer(
            "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n",
            Vec::new(),
            0,
        )
        .await;
        let announced = reqwest::get(&declared).await.unwrap();
        assert!(matches!(
            read_body(announced, 4096).await,
            Err(BodyError::TooLong { .. })
        ));
    }

    #[tokio::test]
    async fn a_cloud_answer_longer_than_the_limit_is_unavailable_not_read_whole() {
        // 17 MiB of white space: read whole, it would sit in memory before
        // being found unreadable.
        let padded = peer(CHUNKED, vec![b' '; 1 << 20], 17).await;
        let client = CloudClient::new(&padded, "k".into()).unwrap();
        let answer = client
            .call::<serde_json::Value>(
                reqwest::Method::GET,
                "/x",
                None::<&()>,
                Duration::from_secs(10),
            )
            .await;
        match answer {
            Err(CloudError::Unavailable { why, .. }) => {
                assert!(why.contains("longer than"), "{why}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn a_url_without_scheme_is_refused_by_name() {
        let error = CloudClient::new("api.kalguard.dev", "k".into())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("KALGUARD_CLOUD_URL"));
    }
}
