//! Fetching Client ID Metadata Documents and clients' key sets without becoming an SSRF
//! proxy (CIMD-8…CIMD-10): the host is resolved by our resolver, which drops every
//! special-use address (RFC 6890 and later registrations, IPv4-mapped IPv6 included), so the
//! connection goes only to an address that was checked; IP literals are checked before the
//! request. No proxies, no redirects, short timeouts, a 200 and at most the size the caller
//! allows (5 KB for documents) of JSON.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::remote::{DocumentFetcher, FetchError, FetchedDocument};
use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Which addresses may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Public unicast addresses only.
    PublicOnly,
    /// Public addresses and loopback (the `dev_loopback_metadata_documents` setting).
    AllowLoopback,
}

/// IPv4 special-use blocks (RFC 6890 and the IANA special-purpose registry), blocked
/// whatever the registry says about forwarding: none of them is a public web server.
const V4_BLOCKED: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // shared address space (CGNAT)
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link local (cloud metadata services live here)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.31.196.0/24", // AS112
    "192.52.193.0/24", // AMT
    "192.88.99.0/24",  // 6to4 relay anycast
    "192.168.0.0/16",  // private
    "192.175.48.0/24", // AS112 direct delegation
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
];

/// IPv6 special-use blocks. IPv4-mapped addresses are unwrapped and checked as IPv4 first.
const V6_BLOCKED: &[&str] = &[
    "::/96",           // unspecified, loopback and the deprecated IPv4-compatible block
    "::ffff:0:0:0/96", // IPv4-translated (SIIT, RFC 2765): embeds an IPv4 address
    "64:ff9b::/96",    // NAT64: reaches any IPv4 address, private ones included
    "64:ff9b:1::/48",  // local-use NAT64
    "100::/64",        // discard
    "2001::/23",       // IETF protocol assignments (Teredo, ORCHID, …)
    "2001:db8::/32",   // documentation
    "2002::/16",       // 6to4: embeds an IPv4 address
    "3fff::/20",       // documentation
    "5f00::/16",       // segment routing SIDs
    "fc00::/7",        // unique local
    "fe80::/10",       // link local
    "fec0::/10",       // deprecated site local
    "ff00::/8",        // multicast
];

static V4_NETS: LazyLock<Vec<Ipv4Net>> =
    // The table above is constant and valid; a typo fails every test.
    LazyLock::new(|| {
        V4_BLOCKED
            .iter()
            .map(|s| s.parse().expect("valid IPv4 net"))
            .collect()
    });
static V6_NETS: LazyLock<Vec<Ipv6Net>> = LazyLock::new(|| {
    V6_BLOCKED
        .iter()
        .map(|s| s.parse().expect("valid IPv6 net"))
        .collect()
});

/// Whether `ip` may be connected to under `policy`.
pub fn allowed(ip: IpAddr, policy: AddressPolicy) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    if policy == AddressPolicy::AllowLoopback && ip.is_loopback() {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => !V4_NETS.iter().any(|n| n.contains(&v4)),
        IpAddr::V6(v6) => !V6_NETS.iter().any(|n| n.contains(&v6)),
    }
}

/// A DNS resolver that returns only allowed addresses, so reqwest connects to nothing else
/// (and a second lookup cannot change the answer: DNS rebinding is closed).
struct CheckedResolver(AddressPolicy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed(a.ip(), policy))
                .collect();
            if ok.is_empty() {
                let msg = format!("{host} resolves only to addresses that may not be fetched");
                return Err(msg.into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The production [`DocumentFetcher`].
pub struct SafeFetcher {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl SafeFetcher {
    /// A fetcher that reaches only what `policy` allows.
    pub fn new(policy: AddressPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(CheckedResolver(policy)))
            .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(SafeFetcher { client, policy })
    }
}

#[async_trait]
impl DocumentFetcher for SafeFetcher {
    async fn fetch(&self, url: &Url, max_bytes: usize) -> Result<FetchedDocument, FetchError> {
        // IP literals never reach the resolver: check them here. The URL parser has already
        // turned odd spellings (0x7f.1, 2130706433, [::ffff:127.0.0.1]) into addresses.
        let literal = match url.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(Host::Domain(_)) => None,
            None => return Err(FetchError::refused("the URL has no host")),
        };
        if let Some(ip) = literal
            && !allowed(ip, self.policy)
        {
            return Err(FetchError::refused(format!(
                "{ip} is a special-use address and may not be fetched"
            )));
        }
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::refused(format!(
                "it answered {status}; redirects are not followed"
            )));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FetchError::server_error(format!("it answered {status}")));
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::refused(format!(
                "it answered {status}, not 200 OK"
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        if media != "application/json" && !media.ends_with("+json") {
            return Err(FetchError::refused(format!(
                "its content type is `{media}`, not application/json"
            )));
        }
        let too_large = || FetchError::refused(format!("it is larger than {max_bytes} bytes"));
        if response
            .content_length()
            .is_some_and(|n| n > max_bytes as u64)
        {
            return Err(too_large());
        }
        let freshness = freshness(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedDocument { body, freshness })
    }
}

/// A failure with no answer. A host whose every address is special-use is refused, not
/// unreachable: asking again will not change it.
fn describe(e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::unreachable("it did not answer in time");
    }
    // The resolver's refusal is the most useful part of a connect error.
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    let message = format!("it could not be fetched: {last}");
    if last.contains("may not be fetched") {
        FetchError::refused(message)
    } else {
        FetchError::unreachable(message)
    }
}

/// RFC 9111 §5.2: `no-store` and `no-cache` mean do not keep; `max-age` says how long.
fn freshness(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let cc = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let mut max_age = None;
    for directive in cc.split(',').map(str::trim) {
        match directive.split_once('=') {
            _ if directive == "no-store" || directive == "no-cache" => {
                return Some(Duration::ZERO);
            }
            Some(("max-age", v)) => {
                max_age = v
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
            _ => {}
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_use_addresses_are_refused() {
        for bad in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2001::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!allowed(ip(bad), AddressPolicy::PublicOnly), "{bad}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(allowed(ip(good), AddressPolicy::PublicOnly), "{good}");
        }
    }

    #[test]
    fn loopback_only_with_the_development_setting() {
        for lo in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(ip(lo), AddressPolicy::AllowLoopback), "{lo}");
        }
        assert!(!allowed(ip("10.0.0.1"), AddressPolicy::AllowLoopback));
        assert!(!allowed(
            ip("169.254.169.254"),
            AddressPolicy::AllowLoopback
        ));
    }

    #[test]
    fn odd_encodings_parse_to_the_address_they_mean() {
        for (url, expect) in [
            ("https://0x7f.1/c", "127.0.0.1"),
            ("https://2130706433/c", "127.0.0.1"),
            ("https://0177.0.0.1/c", "127.0.0.1"),
            ("https://[::ffff:7f00:1]/c", "::ffff:127.0.0.1"),
        ] {
            let u = Url::parse(url).unwrap();
            let got = match u.host() {
                Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
                Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
                other => panic!("{url}: {other:?}"),
            };
            assert_eq!(got, ip(expect), "{url}");
            assert!(!allowed(got, AddressPolicy::PublicOnly), "{url}");
        }
    }

    #[test]
    fn cache_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(freshness(&h), None);
        h.insert("cache-control", "public, max-age=3600".parse().unwrap());
        assert_eq!(freshness(&h), Some(Duration::from_secs(3600)));
        h.insert("cache-control", "max-age=60, no-store".parse().unwrap());
        assert_eq!(freshness(&h), Some(Duration::ZERO));
    }
}
