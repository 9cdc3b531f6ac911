//! Which hosts a URL given by a user may point the worker at (outgoing
//! webhooks): never inside a network. An IP literal in a loopback, private,
//! link-local, unique-local, shared, multicast or reserved range is refused in
//! every spelling a URL parser or `inet_aton` accepts (`127.1`, `2130706433`,
//! `0x7f000001`, `0177.0.0.1`, `[::ffff:127.0.0.1]`), and so are `localhost`,
//! names under it, single-label names (resolved by a local search domain) and
//! the worker's own host. Names are not resolved here: a Worker cannot reach
//! an operator's private network by name, only through a literal address or a
//! name its own network defines.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Whether `host` is loopback (`127.0.0.0/8`, `[::1]`, `localhost`): the one
/// inside range local development may allow (its receivers live there).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || matches!(ipv4_literal(&host), Some(Ok(ip)) if ip.octets()[0] == 127)
}

/// Why `host` (as it appears in a URL's authority, port removed) may not be a
/// webhook target; `own_host` is the worker's own host name, if known.
pub fn refuse_host(host: &str, own_host: Option<&str>) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Some("has no host".into());
    }
    if host.contains('%') {
        return Some("has a percent-encoded host".into());
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let Ok(ip) = v6.parse::<Ipv6Addr>() else { return Some(format!("has an invalid IPv6 host {host}")) };
        return inside_v6(ip).then(|| format!("points at {host}, an address inside a network"));
    }
    if let Some(ip) = ipv4_literal(&host) {
        return match ip {
            Ok(ip) if inside_v4(ip) => Some(format!("points at {host}, an address inside a network")),
            Ok(_) => None,
            Err(()) => Some(format!("has a host {host:?} that reads as an ambiguous IP address")),
        };
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("points at localhost".into());
    }
    if !host.contains('.') {
        return Some(format!("has a single-label host {host:?} (resolved inside a network)"));
    }
    if own_host.is_some_and(|own| own.trim_end_matches('.').eq_ignore_ascii_case(&host)) {
        return Some("points at batchgate itself".into());
    }
    None
}

/// A host whose last label is numeric is an IPv4 literal to URL parsers
/// (WHATWG) and to `inet_aton`: parsed the same way, with 1 to 4 parts in
/// decimal, `0x` hex or leading-zero octal. `None`: a name; `Err`: a
/// literal nothing parses the same way, refused rather than guessed.
fn ipv4_literal(host: &str) -> Option<Result<Ipv4Addr, ()>> {
    let last = host.rsplit('.').find(|l| !l.is_empty())?;
    let numeric = |l: &str| {
        l.bytes().all(|b| b.is_ascii_digit())
            || l.strip_prefix("0x").is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !numeric(last) {
        return None;
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 4 {
        return Some(Err(()));
    }
    let mut values = Vec::with_capacity(4);
    for p in &parts {
        let v = if let Some(h) = p.strip_prefix("0x") {
            if h.is_empty() { Some(0) } else { u64::from_str_radix(h, 16).ok() }
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()
        } else {
            p.parse::<u64>().ok()
        };
        match v {
            Some(v) => values.push(v),
            None => return Some(Err(())),
        }
    }
    // a, a.b (b: 24 bits), a.b.c (c: 16 bits), a.b.c.d
    let (head, last) = values.split_at(values.len() - 1);
    let last = last.first().copied().unwrap_or(0);
    if head.iter().any(|v| *v > 255) || last >= 1u64 << (8 * (4 - head.len())) {
        return Some(Err(()));
    }
    let mut n = last;
    for (i, v) in head.iter().enumerate() {
        n |= v << (8 * (3 - i));
    }
    Some(u32::try_from(n).map(Ipv4Addr::from).map_err(|_| ()))
}

fn inside_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // "this network"
        || a == 10                           // private
        || (a == 100 && (64..128).contains(&b)) // shared (carrier NAT)
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local (cloud metadata)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)    // IETF protocol assignments
        || (a == 192 && b == 168)            // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

fn inside_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return inside_v4(v4);
    }
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) carry an IPv4 address.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]) || s[..6] == [0, 0, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return inside_v4(v4);
    }
    (s[0] & 0xfe00) == 0xfc00                // unique-local
        || (s[0] & 0xffc0) == 0xfe80         // link-local
        || (s[0] & 0xffc0) == 0xfec0         // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inside_range_is_refused() {
        for host in [
            "127.0.0.1",
            "127.255.1.2",
            "0.0.0.0",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refuse_host(host, None).is_some(), "{host}");
        }
        for host in [
            "8.8.8.8",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.0.1",
            "100.128.0.1",
            "169.253.0.1",
            "192.169.0.1",
            "1.1.1.1",
        ] {
            assert_eq!(refuse_host(host, None), None, "{host}");
        }
    }

    #[test]
    fn other_spellings_of_an_inside_address_are_refused() {
        for host in [
            "2130706433",
            "0x7f000001",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "0177.1",
            "127.1",
            "127.0.1",
            "10.1",
            "0",
            "0x0",
            "017700000001",
            "169.254.43518",
            "127.0.0.1.",
            "LOCALHOST",
            "LocalHost.",
        ] {
            assert!(refuse_host(host, None).is_some(), "{host}");
        }
        // Not one address in any spelling: refused rather than guessed.
        for host in ["1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.16777216", "099.1.1.1", "4294967296"] {
            assert!(refuse_host(host, None).is_some(), "{host}");
        }
        assert_eq!(refuse_host("134744072", None), None, "8.8.8.8 as one number is outside");
    }

    #[test]
    fn ipv6_inside_ranges_and_embedded_ipv4_are_refused() {
        for host in [
            "[::1]",
            "[::]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[fe80::1]",
            "[febf::1]",
            "[fec0::1]",
            "[ff02::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::ffff:169.254.169.254]",
            "[::ffff:10.0.0.1]",
            "[64:ff9b::10.0.0.1]",
            "[::127.0.0.1]",
        ] {
            assert!(refuse_host(host, None).is_some(), "{host}");
        }
        for host in ["[2606:4700::1111]", "[::ffff:8.8.8.8]", "[64:ff9b::8.8.8.8]"] {
            assert_eq!(refuse_host(host, None), None, "{host}");
        }
        assert!(refuse_host("[not-an-ip]", None).is_some());
    }

    #[test]
    fn local_names_and_the_worker_itself_are_refused() {
        for host in ["localhost", "api.localhost", "metadata", "intranet", "a%2eb.com", ""] {
            assert!(refuse_host(host, None).is_some(), "{host}");
        }
        assert!(refuse_host("batchgate.example.com", Some("batchgate.example.com")).is_some());
        assert!(refuse_host("BATCHGATE.example.com.", Some("batchgate.example.com")).is_some());
        assert_eq!(refuse_host("hooks.example.com", Some("batchgate.example.com")), None);
        assert_eq!(refuse_host("0x.example.com", None), None, "a name with a hex-looking label is a name");
    }
}
