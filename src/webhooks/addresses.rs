//! Where a webhook may point: no loopback, private, link-local, CGNAT, unique-local,
//! metadata or other special-purpose address (IPv4-mapped and NAT64 forms included), unless
//! `RAPPORT_WEBHOOK_ALLOW_PRIVATE=true`. A URL is checked when it is subscribed and again at
//! each delivery, by the HTTP client's own resolver ([`CheckedResolver`]): the connection goes
//! only to an address that passed, so a name that resolves to a public address at
//! subscription and to a private one later (DNS rebinding) is refused at delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, or `None` when it is a public one.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "the unspecified network",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (CGNAT) address",
        (127, ..) => "a loopback address",
        (169, 254, _) => "a link-local or cloud metadata address",
        (192, 0, 0) => "a protocol assignment address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=255, ..) => "a multicast, reserved or broadcast address",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let segments = ip.segments();
    // IPv4-compatible (`::a.b.c.d`, deprecated) and NAT64 (`64:ff9b::a.b.c.d`) forms reach
    // the IPv4 address they embed.
    let embedded = Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32);
    match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => Some("the unspecified address"),
        [0, 0, 0, 0, 0, 0, 0, 1] => Some("a loopback address"),
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => refused_v4(embedded),
        [s, ..] if s & 0xfe00 == 0xfc00 => Some("a unique-local address"),
        [s, ..] if s & 0xffc0 == 0xfe80 || s & 0xffc0 == 0xfec0 => Some("a link-local address"),
        [s, ..] if s & 0xff00 == 0xff00 => Some("a multicast address"),
        [0x2001, 0x0db8, ..] => Some("a documentation address"),
        _ => None,
    }
}

/// Why a webhook URL is refused before any lookup: not `http(s)`, no host, credentials in it,
/// or a literal address that is refused. A name is checked by [`resolve`].
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL would be sent in clear in the delivery log; authenticate deliveries by their signature".into());
    }
    if parsed.fragment().is_some() {
        return Err("a URL with a fragment (`#...`) is not sent as written".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if let (Some(ip), false) = (literal_ip(&parsed), allow_private)
        && let Some(why) = refused(ip)
    {
        return Err(format!(
            "{ip} is {why}; deliveries go to public addresses only"
        ));
    }
    Ok(parsed)
}

/// The address a URL names literally (`http://10.0.0.8/`, `http://[::1]/`), if it does; a
/// name is resolved instead ([`resolve`]).
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The addresses of `host`, each checked: an error when it resolves to nothing or to any
/// refused address (a name with one private address among public ones is refused whole).
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("`{host}` does not resolve: {e}"))?
        .collect();
    if found.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    if let Some((addr, why)) = found
        .iter()
        .find_map(|a| refused(a.ip()).map(|why| (a, why)))
    {
        return Err(format!(
            "`{host}` resolves to {}, {why}; deliveries go to public addresses only",
            addr.ip()
        ));
    }
    Ok(found)
}

/// The delivery client's resolver: every name is resolved and checked at connection time.
#[derive(Debug, Default, Clone, Copy)]
pub struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The resolver for a client: checked, or the system's when private addresses are allowed.
pub fn resolver(allow_private: bool) -> Option<Arc<CheckedResolver>> {
    (!allow_private).then(|| Arc::new(CheckedResolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(
                refused(ip.parse().unwrap()).is_some(),
                "{ip} should be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
        ] {
            assert!(refused(ip.parse().unwrap()).is_none(), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        assert!(check_url("https://93.184.216.34/hooks", false).is_ok());
        assert!(check_url("https://shop.example/hooks?x=1", false).is_ok());
        for bad in [
            "ftp://93.184.216.34/",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://user:pass@93.184.216.34/",
            "https://93.184.216.34/#frag",
            "not a url",
            "/relative",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad} should be refused");
        }
        assert!(check_url("http://127.0.0.1:8080/", true).is_ok());
    }
}
