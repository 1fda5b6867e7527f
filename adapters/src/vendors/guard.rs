//! The outbound guard: no call the server makes for a tenant (vendor clients, webhooks,
//! media fetches) reaches a loopback, private, link-local, unique-local, shared, metadata or
//! otherwise non-public address, unless that address is inside `LINKYARD_OUTBOUND_ALLOW`.
//!
//! Names are checked where they are resolved (the client's DNS resolver hands the
//! connector only the addresses that passed, so the connection is pinned to a checked
//! address); literal addresses are checked before each request and on every redirect.

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Where refusals point the operator.
const SETTING: &str = "LINKYARD_OUTBOUND_ALLOW";
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// The largest answer read from a vendor (door videos included); a larger one is refused.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The allowed exceptions to "public addresses only".
#[derive(Debug, Clone, Default)]
pub struct OutboundGuard {
    allow: Vec<IpNet>,
}

/// Whether an IPv4 address is on the public internet.
fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 shared address space (carrier NAT)
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking, 240.0.0.0/4 reserved
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

/// Whether an IPv6 address is on the public internet (mapped IPv4 judged as IPv4).
fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link local, 2001:db8::/32 documentation
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // 64:ff9b::/96 NAT64 and ::/96 IPv4-compatible: they reach IPv4 space unchecked
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

impl OutboundGuard {
    /// Comma-separated CIDRs (a bare address is one host).
    ///
    /// # Errors
    /// Names the entry that is not a CIDR or an address.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allow = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{SETTING}: {entry:?} is not a CIDR such as 10.0.0.0/8 or 127.0.0.1/32"))?;
            allow.push(net);
        }
        Ok(Self { allow })
    }

    /// Whether a call may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let public = match ip {
            IpAddr::V4(v4) => public_v4(v4),
            IpAddr::V6(v6) => public_v6(v6),
        };
        public || self.allow.iter().any(|n| n.contains(&ip))
    }

    fn refusal(ip: IpAddr) -> String {
        format!("refused: {ip} is not a public address (add it to {SETTING} to allow it)")
    }

    /// Checks a host as written in a URL or a `host:port`: a literal address must be
    /// permitted; a name is checked when it is resolved.
    ///
    /// # Errors
    /// Why the address is refused.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) if !self.permits(ip) => Err(Self::refusal(ip)),
            _ => Ok(()),
        }
    }

    /// Checks a URL: http or https, and its host as `check_host` does.
    ///
    /// # Errors
    /// Why the URL is refused.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("refused: {} URLs are not called", url.scheme()));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_host(&ip.to_string()),
            Some(url::Host::Ipv6(ip)) => self.check_host(&ip.to_string()),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err("refused: the URL has no host".into()),
        }
    }

    /// The first setting whose literal address is refused, as `(field, reason)`: every
    /// top-level `http(s)://` value and every `host:port` of `deviceHosts`.
    pub fn check_settings(&self, settings: &Value) -> Option<(String, String)> {
        let obj = settings.as_object()?;
        for (key, v) in obj {
            if let Some(s) = v.as_str().map(str::trim).filter(|s| s.starts_with("http://") || s.starts_with("https://"))
            {
                let checked =
                    reqwest::Url::parse(s).map_err(|_| "not a URL".to_owned()).and_then(|u| self.check_url(&u));
                if let Err(e) = checked {
                    return Some((format!("settings.{key}"), e));
                }
            }
        }
        for (gantry, hostport) in obj.get("deviceHosts").and_then(Value::as_object).into_iter().flatten() {
            let host = hostport.as_str().and_then(|h| h.rsplit_once(':')).map_or("", |(h, _)| h);
            if let Err(e) = self.check_host(host) {
                return Some((format!("settings.deviceHosts.{gantry}"), e));
            }
        }
        None
    }

    /// A client whose every connection, redirect included, passes the guard.
    ///
    /// # Errors
    /// When the TLS backend cannot initialise.
    pub fn client(self: &Arc<Self>, timeout: Duration) -> anyhow::Result<Http> {
        let redirects = self.clone();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .user_agent(concat!("linkyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .build()?;
        Ok(Http { client, guard: self.clone(), max_answer: MAX_ANSWER_BYTES })
    }
}

/// Resolves names and keeps only the addresses the guard permits.
struct GuardedResolver(Arc<OutboundGuard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found.iter().copied().filter(|a| guard.permits(a.ip())).collect();
            if permitted.is_empty() {
                let why = found.first().map_or_else(
                    || format!("refused: {host} resolves to no address"),
                    |a| format!("refused: {host} resolves to {}, not a public address (see {SETTING})", a.ip()),
                );
                return Err(why.into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of the vendor modules: reqwest behind the outbound guard.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    guard: Arc<OutboundGuard>,
    /// The largest answer read, in bytes.
    max_answer: usize,
}

impl Http {
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Sends after checking the URL; the error says what went wrong without the URL (its
    /// query can carry secrets): a refusal by the guard, a timeout, a failed connection.
    ///
    /// # Errors
    /// As said.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
        let (client, built) = req.build_split();
        let built = built.map_err(|_| "the request could not be built".to_owned())?;
        self.guard.check_url(built.url())?;
        let mut resp = client.execute(built).await.map_err(|e| describe(&e))?;
        // The answer is read here, at most `max_answer` bytes: an endpoint a tenant chose
        // cannot make the server buffer without end.
        let too_big = || format!("the answer is larger than {} bytes", self.max_answer);
        if resp.content_length().is_some_and(|n| n > self.max_answer as u64) {
            return Err(too_big());
        }
        let (status, version, headers) = (resp.status(), resp.version(), resp.headers().clone());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > self.max_answer {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let mut rebuilt = http::Response::new(body);
        *rebuilt.status_mut() = status;
        *rebuilt.version_mut() = version;
        *rebuilt.headers_mut() = headers;
        Ok(reqwest::Response::from(rebuilt))
    }

    /// The same client reading answers of at most `bytes`.
    #[must_use]
    pub fn with_max_answer(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }
}

/// A send error in words, the guard's refusal (deep in the error's sources) kept whole.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.starts_with("refused: ") || text.contains(SETTING) {
            return text;
        }
        source = s.source();
    }
    super::transport_error(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_public_addresses_pass_unless_allowed() {
        let g = OutboundGuard::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::a9fe:a9fe",
        ] {
            assert!(!g.permits(ip(bad)), "{bad}");
        }
        for good in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "203.119.0.1"] {
            assert!(g.permits(ip(good)), "{good}");
        }
        let g = OutboundGuard::parse("127.0.0.1/32, 10.100.254.26").expect("parse");
        assert!(g.permits(ip("127.0.0.1")) && g.permits(ip("10.100.254.26")));
        assert!(!g.permits(ip("127.0.0.2")) && !g.permits(ip("10.100.254.27")));
        assert!(OutboundGuard::parse("10.0.0.0/33").is_err());
        assert!(OutboundGuard::parse("localhost").is_err());
    }

    #[test]
    fn literal_urls_and_settings_are_checked() {
        let g = OutboundGuard::default();
        let url = |s: &str| reqwest::Url::parse(s).expect("url");
        assert!(g.check_url(&url("http://169.254.169.254/latest/meta-data")).is_err());
        assert!(g.check_url(&url("http://[::1]:6379/")).is_err());
        assert!(g.check_url(&url("http://0x7f000001/")).is_err(), "hex forms are literal addresses too");
        assert!(g.check_url(&url("file:///etc/passwd")).is_err());
        assert!(g.check_url(&url("https://open.dingding.example/")).is_ok(), "names are checked when resolved");
        let bad = g.check_settings(&serde_json::json!({"baseUrl": "http://10.0.0.5:8012", "systemName": "x"}));
        assert_eq!(bad.map(|(f, _)| f), Some("settings.baseUrl".to_owned()));
        let bad = g.check_settings(&serde_json::json!({"deviceHosts": {"G1": "192.168.1.10:3699"}}));
        assert_eq!(bad.map(|(f, _)| f), Some("settings.deviceHosts.G1".to_owned()));
        assert!(g.check_settings(&serde_json::json!({"baseUrl": "https://a.example"})).is_none());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_with_a_clear_error() {
        let g = Arc::new(OutboundGuard::default());
        let http = g.client(Duration::from_secs(5)).expect("client");
        let err = http.send(http.get("http://localhost:9/")).await.expect_err("refused");
        assert!(err.starts_with("refused: localhost resolves to"), "{err}");
        let err = http.send(http.get("http://127.0.0.1:9/")).await.expect_err("refused");
        assert!(err.contains(SETTING), "{err}");
    }

    #[tokio::test]
    async fn answers_are_read_up_to_the_cap() {
        // A local endpoint (allowed here) answering 3,000 bytes, chunked or with a length.
        let app = axum_like_server().await;
        let g = Arc::new(OutboundGuard::parse("127.0.0.1/32").expect("allow"));
        let http = g.client(Duration::from_secs(5)).expect("client").with_max_answer(2_000);
        let err = http.send(http.get(format!("{app}/big"))).await.expect_err("too big");
        assert!(err.contains("larger than 2000 bytes"), "{err}");
        let ok = http.send(http.get(format!("{app}/small"))).await.expect("small");
        assert_eq!(ok.status().as_u16(), 201);
        assert_eq!(ok.headers().get("x-kept").and_then(|v| v.to_str().ok()), Some("yes"));
        assert_eq!(ok.text().await.expect("text"), "hello");
    }

    /// A tiny HTTP server on loopback: `/big` answers 3,000 bytes, anything else 201 "hello".
    async fn axum_like_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 4096];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let resp = if req.starts_with("GET /big") {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: 3000\r\nconnection: close\r\n\r\n{}",
                            "x".repeat(3000)
                        )
                    } else {
                        "HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-kept: yes\r\nconnection: close\r\n\r\nhello"
                            .to_owned()
                    };
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }
}
