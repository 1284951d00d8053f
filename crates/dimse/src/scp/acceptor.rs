//! The listening side of an SCP: one thread accepting connections, one thread per
//! connection, and a stop that closes them all and waits for their threads.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Accepts connections on a bound listener and serves each on a thread of its own
/// (named `<name>-<n>`), until [`stop`](Self::stop) (or its drop): then the accept
/// loop is woken and ends, every open connection is shut down (a thread blocked
/// reading it returns), and every connection thread is joined. A thread that cannot
/// be started closes its connection unanswered.
#[derive(Debug)]
pub struct Acceptor {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    open: Arc<Open>,
    accept_thread: Option<JoinHandle<()>>,
}

/// The connections being served and their threads.
#[derive(Debug, Default)]
struct Open {
    connections: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Acceptor {
    /// Starts accepting on `listener`, serving each connection with `serve`. The
    /// `stopping` flag is set when the acceptor stops: a serving thread may check it
    /// to tell a stop from a peer's error.
    ///
    /// # Errors
    /// The listener's address cannot be read, or the accept thread cannot start.
    pub fn start(
        listener: TcpListener,
        name: &str,
        stopping: Arc<AtomicBool>,
        serve: impl Fn(TcpStream) + Send + Sync + 'static,
    ) -> io::Result<Acceptor> {
        let local_addr = listener.local_addr()?;
        let open = Arc::new(Open::default());
        let accepting = (open.clone(), stopping.clone(), Arc::new(serve));
        let prefix = name.to_string();
        let accept_thread = thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                let (open, stopping, serve) = accepting;
                accept_loop(&listener, &prefix, &open, &stopping, &serve);
            })?;
        Ok(Acceptor {
            local_addr,
            stopping,
            open,
            accept_thread: Some(accept_thread),
        })
    }

    /// The address it listens on (with the port the system picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, shuts every open connection down and waits for the threads
    /// serving them. Does nothing the second time.
    pub fn stop(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(
            &crate::socket::reachable_address(self.local_addr),
            Duration::from_secs(1),
        );
        let _ = accept_thread.join();
        for (_, stream) in lock(&self.open.connections).drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = lock(&self.open.threads).drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking connection thread leaves the bookkeeping usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    name: &str,
    open: &Arc<Open>,
    stopping: &AtomicBool,
    serve: &Arc<impl Fn(TcpStream) + Send + Sync + 'static>,
) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if stopping.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else {
            // A connection that failed before we got it (reset): keep listening.
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            lock(&open.connections).insert(id, clone);
        }
        let serving = (open.clone(), serve.clone());
        let spawned = thread::Builder::new()
            .name(format!("{name}-{id}"))
            .spawn(move || {
                let (open, serve) = serving;
                serve(stream);
                lock(&open.connections).remove(&id);
            });
        match spawned {
            Ok(handle) => {
                let mut threads = lock(&open.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(_) => {
                if let Some(stream) = lock(&open.connections).remove(&id) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn every_connection_is_served_and_a_stop_ends_the_ones_still_open() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let counted = served.clone();
        let mut acceptor = Acceptor::start(
            listener,
            "test-acceptor",
            Arc::new(AtomicBool::new(false)),
            move |mut stream| {
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(b"hello");
                // Held open until the peer or the stop closes it.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            },
        )
        .unwrap();
        let addr = acceptor.local_addr();
        let mut clients: Vec<TcpStream> =
            (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for client in &mut clients {
            let mut greeting = [0u8; 5];
            client.read_exact(&mut greeting).unwrap();
            assert_eq!(&greeting, b"hello");
        }
        assert_eq!(served.load(Ordering::SeqCst), 3);
        // The three serving threads are blocked reading: the stop must end them.
        acceptor.stop();
        for client in &mut clients {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut byte = [0u8; 1];
            assert_eq!(client.read(&mut byte).unwrap_or(0), 0, "closed by the stop");
        }
        acceptor.stop();
    }
}
