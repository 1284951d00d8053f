//! The acceptor's connection: plain TCP, or TLS over TCP after a handshake bounded
//! by a deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::error::ScpError;
use crate::tls::{TlsFailure, TlsSession};

/// An accepted connection, plain or TLS.
#[derive(Debug)]
pub enum ScpStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, after a completed handshake.
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl ScpStream {
    /// Runs the server side of a TLS handshake on `tcp`, within `timeout`.
    ///
    /// The socket's read and write timeouts are set to what is left of `timeout`
    /// before every step of the handshake and restored afterwards.
    ///
    /// # Errors
    /// [`ScpError::Tls`] with what went wrong in the terms a user fixes it by: a
    /// plaintext DICOM client ([`TlsFailure::NotTls`]), a client without an
    /// acceptable certificate when one is required
    /// ([`TlsFailure::ClientCertificateRefused`] or
    /// [`TlsFailure::UnknownIssuer`]), no common version, a timeout
    /// ([`TlsFailure::TimedOut`]), a close ([`TlsFailure::Closed`]).
    pub fn accept_tls(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        timeout: Duration,
    ) -> Result<ScpStream, ScpError> {
        let mut tcp = tcp;
        let mut connection = ServerConnection::new(config)
            .map_err(|e| ScpError::Tls(TlsFailure::from_rustls(&e)))?;
        let saved = (tcp.read_timeout(), tcp.write_timeout());
        let deadline = Instant::now() + timeout;
        let result = handshake(&mut connection, &mut tcp, deadline);
        if let (Ok(read), Ok(write)) = saved {
            let _ = tcp.set_read_timeout(read);
            let _ = tcp.set_write_timeout(write);
        }
        match result {
            Ok(()) => Ok(ScpStream::Tls(Box::new(StreamOwned::new(connection, tcp)))),
            Err(failure) => {
                // Let the alert rustls queued reach the client (once: it may be gone).
                if connection.wants_write() {
                    let _ = tcp.set_write_timeout(Some(Duration::from_millis(200)));
                    let _ = connection.write_tls(&mut tcp);
                }
                Err(ScpError::Tls(failure))
            }
        }
    }

    /// The TCP socket (for timeouts, shutdown, addresses).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ScpStream::Plain(tcp) => tcp,
            ScpStream::Tls(tls) => &tls.sock,
        }
    }

    /// What the TLS handshake negotiated; `None` on a plain connection.
    pub fn tls_session(&self) -> Option<TlsSession> {
        match self {
            ScpStream::Plain(_) => None,
            ScpStream::Tls(tls) => Some(TlsSession::of(&tls.conn)),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, ScpStream::Tls(_))
    }

    /// Whether bytes are waiting: decrypted TLS data, or data on the socket.
    /// Never blocks.
    pub fn input_waiting(&mut self) -> bool {
        if let ScpStream::Tls(tls) = self {
            match tls.conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > 0 => return true,
                Ok(_) => {}
                // Reading will report it.
                Err(_) => return true,
            }
        }
        let tcp = self.tcp();
        let mut probe = [0u8; 1];
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let peeked = tcp.peek(&mut probe);
        let _ = tcp.set_nonblocking(false);
        // A close (0 bytes) is input too: the next read reports it.
        peeked.is_ok()
    }

    /// Ends a TLS session with close_notify (nothing for plain TCP), then shuts the
    /// socket down for writing.
    pub fn close_write(&mut self) {
        if let ScpStream::Tls(tls) = self {
            tls.conn.send_close_notify();
            while tls.conn.wants_write() {
                if !matches!(tls.conn.write_tls(&mut tls.sock), Ok(n) if n > 0) {
                    break;
                }
            }
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Write);
    }
}

/// The handshake step by step (not `complete_io`, which loops on reads until the
/// handshake ends): every socket read and write is bounded by what is left before
/// `deadline`, so a client that trickles bytes cannot hold the thread past it.
fn handshake(
    connection: &mut ServerConnection,
    tcp: &mut TcpStream,
    deadline: Instant,
) -> Result<(), TlsFailure> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TlsFailure::TimedOut);
        }
        if tcp.set_read_timeout(Some(left)).is_err() || tcp.set_write_timeout(Some(left)).is_err() {
            return Err(TlsFailure::Closed);
        }
        while connection.wants_write() {
            match connection.write_tls(tcp) {
                Ok(0) => return Err(TlsFailure::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TlsFailure::classify(&e)),
            }
        }
        if !connection.is_handshaking() {
            return Ok(());
        }
        match connection.read_tls(tcp) {
            Ok(0) => return Err(TlsFailure::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TlsFailure::classify(&e)),
        }
        connection
            .process_new_packets()
            .map_err(|e| TlsFailure::from_rustls(&e))?;
    }
}

impl Read for ScpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ScpStream::Plain(tcp) => tcp.read(buf),
            ScpStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for ScpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ScpStream::Plain(tcp) => tcp.write(buf),
            ScpStream::Tls(tls) => tls.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            ScpStream::Plain(tcp) => tcp.write_all(buf),
            ScpStream::Tls(tls) => tls.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ScpStream::Plain(tcp) => tcp.flush(),
            ScpStream::Tls(tls) => tls.flush(),
        }
    }
}
