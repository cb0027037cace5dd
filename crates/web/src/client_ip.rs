//! The client's address: the peer's, unless the peer is one of `web.trusted_proxies`; then the address
//! its `X-Forwarded-For` names. A client that is not a trusted proxy cannot pick its own address by
//! sending the header. Use `client_ip` wherever a client's address matters (the request log, limits).

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use actix_web::web;
use ipnet::IpNet;

use crate::state::AppState;

/// The client of `request`, by the application's `web.trusted_proxies`.
pub fn client_ip(request: &HttpRequest) -> Option<IpAddr> {
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.trusted_proxies.as_slice())
        .unwrap_or_default();
    let peer = request.peer_addr().map(|addr| addr.ip());
    resolve(peer, request.headers(), trusted)
}

/// Walks `X-Forwarded-For` from the right (the hop nearest to us) while the address is a trusted proxy;
/// the first address that is not is the client. An entry that is not an address stops the walk at the
/// last trusted hop, and a chain of trusted proxies only gives its leftmost entry.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or with a port (`192.0.2.1:1234`,
/// `[2001:db8::1]:1234`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in forwarded {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies() -> Vec<IpNet> {
        vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.0.2.7/32".parse().unwrap(),
        ]
    }

    /// A case's name, the peer, its `X-Forwarded-For` headers, the trusted proxies, and the client.
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [IpNet], &'a str);

    #[test]
    fn the_client_is_the_peer_unless_trusted_proxies_name_another() {
        let proxies = proxies();
        let cases: [Case; 6] = [
            (
                "an untrusted peer cannot name another client",
                "198.51.100.9",
                &["203.0.113.1"],
                &proxies,
                "198.51.100.9",
            ),
            (
                "without trusted proxies the header is ignored",
                "10.1.2.3",
                &["203.0.113.1"],
                &[],
                "10.1.2.3",
            ),
            (
                "a trusted proxy names the client",
                "10.1.2.3",
                &["203.0.113.1"],
                &proxies,
                "203.0.113.1",
            ),
            // The client sent "1.1.1.1" itself; the trusted proxies appended the real client and each other.
            (
                "addresses the client put in front are not believed",
                "10.1.2.3",
                &["1.1.1.1, 203.0.113.1", "192.0.2.7:4431"],
                &proxies,
                "203.0.113.1",
            ),
            (
                "garbage stops at the last trusted hop",
                "10.1.2.3",
                &["203.0.113.1, unknown"],
                &proxies,
                "10.1.2.3",
            ),
            (
                "a trusted proxy that names nobody is the client",
                "10.1.2.3",
                &[],
                &proxies,
                "10.1.2.3",
            ),
        ];
        for (case, peer, forwarded, trusted, client) in cases {
            let answer = resolve(Some(ip(peer)), &headers(forwarded), trusted);
            assert_eq!(answer, Some(ip(client)), "{case}");
        }
    }
}
