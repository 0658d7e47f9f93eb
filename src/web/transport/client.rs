//! Who a client is, for budgets and capacity: a Tor circuit, an address, or nobody in
//! particular.
//!
//! Behind tor every connection comes from 127.0.0.1, so addresses tell nobody apart. With
//! `HiddenServiceExportCircuitID haproxy` in the torrc, tor starts every connection to the
//! onion service with a PROXY protocol v1 line that carries the id of the circuit the stream
//! came on, in the source address:
//!
//! ```text
//! PROXY TCP6 fc00:dead:beef:4dad::<id high 16 bits>:<id low 16 bits> ::1 0 443\r\n
//! ```
//!
//! (tor's `export_hs_client_circuit_id`). Tor Browser gives each site its own circuit, so a
//! circuit is the closest thing to "one visitor" an onion service can know; a flooder who wants
//! many budgets must build many circuits, each through an introduction that tor's
//! proof-of-work defence makes costly under load.
//!
//! With `client_address = "tor-circuit"` a connection without that line — missing, garbage,
//! truncated, too long, the binary v2 form, another proxy's addresses — or from a peer that
//! cannot be tor (neither loopback nor in `rate_limits.trusted_proxies`) is closed before any
//! HTTP is read (fail closed: serving it would put it in someone else's budget), and the log
//! says, at most once a minute, what to fix. Neither the line nor the id is ever logged; an id
//! lives only in the ledger's and the budgets' memory, until the circuit's use has decayed.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// A client as far as budgets know it. Its `Debug` form says which kind, never which one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// A Tor circuit, by the id tor exported.
    Circuit(u32),
    /// An address (`peer` or `forwarded`).
    Address(IpAddr),
    /// Clients cannot be told apart (`client_address = "none"`): all of them together.
    Everyone,
}

impl Client {
    /// The client at `ip`. An IPv6 address counts by its /64: one host is usually given a whole
    /// /64, and would otherwise have more budgets than it could ever use.
    pub fn address(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Client::Address(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            IpAddr::V6(v6) => Client::Address(IpAddr::V4(v6.to_ipv4_mapped().expect("mapped"))),
            v4 => Client::Address(v4),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Client::Circuit(_) => "Client::Circuit(..)",
            Client::Address(_) => "Client::Address(..)",
            Client::Everyone => "Client::Everyone",
        })
    }
}

/// The prefix of the source address tor writes (RFC 4193 space; tor's own constant).
const TOR_PREFIX: [u16; 4] = [0xfc00, 0xdead, 0xbeef, 0x4dad];
/// The longest PROXY v1 line, `\r\n` included (the protocol's own bound).
const MAX_LINE: u64 = 107;

/// Why a connection's PROXY header was refused; for tests and the one log line (which never
/// includes the header itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHeader {
    /// Nothing, or not a whole line, before the header deadline.
    Missing,
    /// Not a PROXY v1 line (HTTP without a header, garbage, the binary v2 form, too long).
    Malformed,
    /// A PROXY line, but not the circuit form tor writes.
    NotTor,
    /// From a peer that is not tor (not loopback, not in `rate_limits.trusted_proxies`).
    NotFromTor,
}

/// Reads tor's PROXY line from the start of `stream` and returns the circuit id, with the
/// stream (buffered, so that bytes read past the line reach HTTP). Bounded in bytes
/// (`MAX_LINE`) and in time (`deadline`).
pub async fn read_circuit<S: AsyncRead + Unpin>(
    stream: S,
    deadline: Duration,
) -> Result<(u32, BufReader<S>), BadHeader> {
    use tokio::io::AsyncReadExt;
    // A small buffer: HTTP's own reads (larger) go straight to the socket once it is empty.
    let mut reader = BufReader::with_capacity(512, stream);
    let mut line = Vec::with_capacity(MAX_LINE as usize);
    let read = async {
        let mut limited = (&mut reader).take(MAX_LINE);
        limited.read_until(b'\n', &mut line).await
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok(_)) if line.ends_with(b"\r\n") => {}
        Ok(Ok(_)) if line.len() as u64 >= MAX_LINE => return Err(BadHeader::Malformed),
        // The client closed early, or a line without "\r\n", or nothing in time.
        Ok(Ok(n)) if n > 0 && !line.ends_with(b"\n") => return Err(BadHeader::Missing),
        Ok(Ok(_)) => return Err(BadHeader::Malformed),
        Ok(Err(_)) | Err(_) => return Err(BadHeader::Missing),
    }
    let circuit = circuit_id(&line)?;
    Ok((circuit, reader))
}

/// The circuit id in one complete PROXY v1 line, if it is the form tor writes.
pub fn circuit_id(line: &[u8]) -> Result<u32, BadHeader> {
    let header = ppp::v1::Header::try_from(line).map_err(|_| BadHeader::Malformed)?;
    if header.header.len() != line.len() {
        return Err(BadHeader::Malformed);
    }
    let ppp::v1::Addresses::Tcp6(addresses) = header.addresses else {
        return Err(BadHeader::NotTor);
    };
    let segments = addresses.source_address.segments();
    if segments[..4] != TOR_PREFIX || segments[4..6] != [0, 0] {
        return Err(BadHeader::NotTor);
    }
    Ok((u32::from(segments[6]) << 16) | u32::from(segments[7]))
}

/// The line tor would send for `circuit` (tests and benchmarks speak as tor does).
pub fn tor_header(circuit: u32) -> String {
    let source = Ipv6Addr::new(
        TOR_PREFIX[0],
        TOR_PREFIX[1],
        TOR_PREFIX[2],
        TOR_PREFIX[3],
        0,
        0,
        (circuit >> 16) as u16,
        circuit as u16,
    );
    format!("PROXY TCP6 {source} ::1 0 443\r\n")
}

/// The torrc line whose absence is the usual cause of a refused header.
pub const TORRC_HINT: &str = "with rate_limits.client_address = \"tor-circuit\", the onion \
    service's torrc section must have `HiddenServiceExportCircuitID haproxy` and point \
    HiddenServicePort at the public listener; nothing else may connect to that listener";

/// Says once a minute at most that connections are being refused for their header, so that a
/// misconfigured torrc is visible without a flood of junk filling the log.
pub fn warn_refused(kind: BadHeader) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    let why = match kind {
        BadHeader::Missing => "no PROXY header arrived in time",
        BadHeader::Malformed => "the connection did not start with a PROXY v1 header",
        BadHeader::NotTor => "the PROXY header did not carry a tor circuit id",
        BadHeader::NotFromTor => {
            "the connection came from neither loopback nor rate_limits.trusted_proxies, so it \
             cannot be tor"
        }
    };
    tracing::warn!("closed a public connection: {why}; {TORRC_HINT} (said at most once a minute)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_circuit_tor_writes() {
        assert_eq!(
            circuit_id(b"PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 0 443\r\n"),
            Ok(0x0001_0002)
        );
        assert_eq!(circuit_id(tor_header(u32::MAX).as_bytes()), Ok(u32::MAX));
        assert_eq!(circuit_id(tor_header(7).as_bytes()), Ok(7));
    }

    #[test]
    fn refuses_what_tor_does_not_write() {
        for (line, why) in [
            (&b"GET / HTTP/1.1\r\n"[..], BadHeader::Malformed),
            (b"PROXY UNKNOWN\r\n", BadHeader::NotTor),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", BadHeader::NotTor),
            (
                b"PROXY TCP6 fc00:dead:beef:4dae::1:2 ::1 0 443\r\n",
                BadHeader::NotTor,
            ),
            (
                b"PROXY TCP6 fc00:dead:beef:4dad:1::1:2 ::1 0 443\r\n",
                BadHeader::NotTor,
            ),
            (
                b"PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 0\r\n",
                BadHeader::Malformed,
            ),
            (b"\r\n\r\n\0\r\nQUIT\n", BadHeader::Malformed),
        ] {
            assert_eq!(
                circuit_id(line),
                Err(why),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn an_ipv6_host_is_one_client_per_64() {
        let a = Client::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::address("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Client::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Client::address("::ffff:192.0.2.1".parse().unwrap()),
            Client::address("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn debug_never_shows_which_client() {
        let shown = format!("{:?}", Client::Circuit(0x1234_5678));
        assert!(!shown.contains("305419896") && !shown.contains("1234"));
        let shown = format!("{:?}", Client::Address("10.1.2.3".parse().unwrap()));
        assert!(!shown.contains("10.1.2.3"));
    }
}
