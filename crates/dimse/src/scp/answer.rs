//! Answering an association request with a refusal: A-ASSOCIATE-RJ or A-ABORT, then
//! waiting (briefly) for the peer to close.

use std::io::Read;
use std::time::{Duration, Instant};

use dicom_ul::Pdu;
use dicom_ul::pdu::{AbortRQSource, AssociationRJ};

use super::stream::ScpStream;

/// Sends the A-ASSOCIATE-RJ and closes the connection once the peer has read it
/// (see [`linger_until_peer_closes`]). Errors are ignored: the peer may be gone.
pub fn reject(mut stream: ScpStream, rejection: AssociationRJ) {
    send(&mut stream, &Pdu::AssociationRJ(rejection));
    linger_until_peer_closes(&mut stream);
}

/// Sends an A-ABORT and closes the connection once the peer has read it.
pub fn abort(mut stream: ScpStream, source: AbortRQSource) {
    send(&mut stream, &Pdu::AbortRQ { source });
    linger_until_peer_closes(&mut stream);
}

fn send(stream: &mut ScpStream, pdu: &Pdu) {
    use std::io::Write;
    let mut out = Vec::with_capacity(16);
    if dicom_ul::pdu::write_pdu(&mut out, pdu).is_ok() {
        let _ = stream.write_all(&out);
        let _ = stream.flush();
    }
}

/// Closing a socket with unread input makes Linux send RST, which can destroy the
/// RJ or A-ABORT just written before the peer reads it: shut down our side (after
/// TLS close_notify), then let the peer close first, waiting at most a second and
/// reading at most 1 MiB.
pub fn linger_until_peer_closes(stream: &mut ScpStream) {
    stream.close_write();
    let mut tcp = stream.tcp();
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while Instant::now() < deadline && total < (1 << 20) {
        match tcp.read(&mut sink) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
}
