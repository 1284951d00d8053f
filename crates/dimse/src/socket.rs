//! How an association's TCP socket is tuned: no Nagle on our side, and (on Linux)
//! immediate acknowledgements, so that neither our stack nor the peer's adds a
//! delayed-ACK wait to a request and its response.
//!
//! # Why both
//!
//! `TCP_NODELAY` stops *our* stack from holding back the tail of a request until the
//! previous segment is acknowledged. A peer that leaves Nagle on (Debian's DCMTK
//! without `TCP_NODELAY=1`, many Windows routers) still holds back the tail of *its*
//! response until we acknowledge the head, and Linux delays that acknowledgement by
//! up to 40 ms once a connection looks interactive ("ping-pong" mode, entered again
//! by every request we write). The measured latency is then the two TCP stacks', not
//! the router's: about 52 ms per 10 MB store on loopback.
//!
//! `TCP_QUICKACK` makes Linux acknowledge at once, but it is not sticky: the kernel
//! leaves quick-ACK mode again by itself. So it is set after connecting and re-armed
//! around every read ([`SocketTuning::rearm`]). A plain modality does not do this;
//! [`SocketTuning::quick_ack`] off imitates one. Elsewhere than Linux there is no
//! such option and re-arming does nothing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};

/// The address a client on this machine connects to for a listener bound to
/// `bound`: an unspecified address (`0.0.0.0`, `::`) is reached on loopback. What
/// wakes a blocking `accept`, and what a local peer is told to call back.
pub fn reachable_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// What is set on an association's socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketTuning {
    quick_ack: bool,
}

impl Default for SocketTuning {
    /// Nagle off and quick acknowledgements on.
    fn default() -> Self {
        SocketTuning { quick_ack: true }
    }
}

impl SocketTuning {
    /// Quick acknowledgements on or off (`TCP_NODELAY` is always on).
    pub fn quick_ack(quick_ack: bool) -> Self {
        SocketTuning { quick_ack }
    }

    /// Whether quick acknowledgements are asked for.
    pub fn has_quick_ack(&self) -> bool {
        self.quick_ack
    }

    /// Whether this platform can acknowledge at once (Linux `TCP_QUICKACK`).
    pub fn quick_ack_supported() -> bool {
        cfg!(any(target_os = "linux", target_os = "android"))
    }

    /// Sets `TCP_NODELAY` and, when asked for, arms quick acknowledgements: once,
    /// right after connecting.
    ///
    /// # Errors
    /// The socket option could not be set.
    pub fn apply(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        self.rearm(stream)
    }

    /// Arms quick acknowledgements again (the kernel drops them by itself): call it
    /// before and after each read. Does nothing when they are off or unsupported.
    ///
    /// # Errors
    /// The socket option could not be set (the socket is then most likely dead, and
    /// the next read says so).
    pub fn rearm(&self, stream: &TcpStream) -> io::Result<()> {
        if !self.quick_ack {
            return Ok(());
        }
        set_quick_ack(stream, true)
    }

    /// Whether quick acknowledgements are armed on `stream` right now (`false` where
    /// unsupported): for tests and diagnostics.
    ///
    /// # Errors
    /// The socket option could not be read.
    pub fn is_armed(stream: &TcpStream) -> io::Result<bool> {
        quick_ack_of(stream)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_quick_ack(stream: &TcpStream, on: bool) -> io::Result<()> {
    socket2::SockRef::from(stream).set_tcp_quickack(on)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_quick_ack(_stream: &TcpStream, _on: bool) -> io::Result<()> {
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quick_ack_of(stream: &TcpStream) -> io::Result<bool> {
    socket2::SockRef::from(stream).tcp_quickack()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quick_ack_of(_stream: &TcpStream) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn connected_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn applying_the_default_tuning_turns_nagle_off_and_arms_quick_acks() {
        let (client, _server) = connected_pair();
        SocketTuning::default().apply(&client).unwrap();
        assert!(client.nodelay().unwrap());
        assert_eq!(
            SocketTuning::is_armed(&client).unwrap(),
            SocketTuning::quick_ack_supported()
        );
    }

    #[test]
    fn with_quick_acks_off_rearming_leaves_the_socket_as_the_kernel_set_it() {
        let (client, _server) = connected_pair();
        set_quick_ack(&client, false).unwrap();
        let plain = SocketTuning::quick_ack(false);
        plain.apply(&client).unwrap();
        plain.rearm(&client).unwrap();
        assert!(client.nodelay().unwrap());
        assert!(!SocketTuning::is_armed(&client).unwrap());
        assert!(!plain.has_quick_ack());
    }
}
