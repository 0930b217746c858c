//! The HTTP connection layer: accepts TCP connections and serves the application on each over
//! HTTP/1.1, holding every connection to the header read and idle keep-alive timeouts of
//! [`HttpLimits`], and shuts down gracefully.
//!
//! poem's own `Server` builds hyper's connection builder inside and exposes neither hyper's
//! `header_read_timeout` (which needs a timer) nor a keep-alive timeout, and its idle timeout
//! counts any byte as activity, so a client trickling one header byte at a time is never cut
//! off. This layer is the smallest replacement: the same accept loop and graceful shutdown,
//! handing each connection to hyper's HTTP/1 builder with a timer of our own, [`HeadTimer`].
//!
//! hyper arms its header timer whenever it starts waiting for a request head, which on a
//! keep-alive connection is as soon as the previous response is sent: with a plain timer, an
//! idle connection would be closed after the header timeout and a separate keep-alive timeout
//! could not exist. [`HeadTimer`] tells the two phases apart by counting reads that delivered
//! bytes ([`CountingReads`]): until the next request's first byte arrives the connection is idle
//! and may stay so for the keep-alive timeout; from that byte on the client has the header
//! timeout to finish the head. A connection's first request has the header timeout from the
//! moment it connects, so a client that connects and sends nothing is dropped as quickly.
//!
//! HTTP/2 is not served (h2c by prior knowledge was the only form poem offered without TLS): its
//! connections would escape both timeouts, and TLS-terminating proxies in front speak HTTP/1.1
//! to their backends.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use ipa_api::HttpLimits;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, EndpointExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long the accept loop pauses after a failed accept (out of file descriptors, say) before
/// trying again, rather than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets requests in
/// flight finish for up to `grace`, and drops the connections still open.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let app = Arc::new(app.map_to_response());
    let local = LocalAddr(listener.local_addr()?.into());
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            // Shutdown first: a stream of connections must not keep it from being seen.
            biased;
            () = &mut shutdown => break,
            // Finished connections are collected as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((socket, remote)) => {
                    connections.spawn(serve_connection(
                        socket,
                        app.clone(),
                        local.clone(),
                        RemoteAddr(remote.into()),
                        limits,
                        stopping.clone(),
                    ));
                }
                Err(err) => {
                    tracing::warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still busy after the grace period"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Serves one connection until it ends, or until shutdown (after finishing its request in
/// flight).
async fn serve_connection<E>(
    socket: TcpStream,
    app: Arc<E>,
    local: LocalAddr,
    remote: RemoteAddr,
    limits: HttpLimits,
    mut stopping: watch::Receiver<bool>,
) where
    E: Endpoint<Output = poem::Response> + 'static,
{
    let reads = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(CountingReads {
        inner: socket,
        reads: reads.clone(),
    });
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        let request: poem::Request = (request, local.clone(), remote.clone(), Scheme::HTTP).into();
        async move {
            let response = app.get_response(request).await;
            Ok::<_, Infallible>(hyper::Response::<BoxBody<Bytes, io::Error>>::from(response))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(HeadTimer {
            reads,
            header: limits.header_read_timeout,
            idle: limits.keep_alive_timeout,
        })
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let stop = async move {
        // A closed channel (the server gone) counts as a stop too.
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    tokio::select! {
        served = connection.as_mut() => {
            if let Err(err) = served {
                tracing::debug!("connection ended: {err}");
            }
        }
        () = stop => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A stream that counts the reads that delivered bytes, for [`HeadTimer`].
struct CountingReads {
    inner: TcpStream,
    reads: Arc<AtomicU64>,
}

impl AsyncRead for CountingReads {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for CountingReads {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// hyper's timer for one HTTP/1 connection. A server connection uses its timer only for the
/// header read timeout, asking for a sleep each time it starts waiting for a request head; the
/// sleep given back ([`HeadDeadline`]) ends when that wait has lasted too long (see the module
/// documentation).
#[derive(Clone)]
struct HeadTimer {
    reads: Arc<AtomicU64>,
    header: Duration,
    idle: Duration,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, _duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.head_deadline())
    }

    fn sleep_until(&self, _deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.head_deadline())
    }
}

impl HeadTimer {
    fn head_deadline(&self) -> HeadDeadline {
        let reads_at_start = self.reads.load(Ordering::Relaxed);
        let started = Instant::now();
        HeadDeadline {
            reads: self.reads.clone(),
            reads_at_start,
            started,
            first_request: reads_at_start == 0,
            head_began: None,
            header: self.header,
            idle: self.idle,
            sleep: Box::pin(tokio::time::sleep_until(started.into())),
            armed_for: None,
        }
    }
}

impl hyper::rt::Sleep for HeadDeadline {}

/// The end of one wait for a request head.
struct HeadDeadline {
    reads: Arc<AtomicU64>,
    reads_at_start: u64,
    started: Instant,
    /// No byte was ever read on the connection: it has the header timeout from the start.
    first_request: bool,
    /// When the first byte of this head arrived (seen when hyper polls after reading it).
    head_began: Option<Instant>,
    header: Duration,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed_for: Option<Instant>,
}

impl HeadDeadline {
    fn deadline(&self) -> Instant {
        if self.first_request {
            return self.started + self.header;
        }
        match self.head_began {
            Some(began) => began + self.header,
            None => self.started + self.idle,
        }
    }
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.head_began.is_none() && this.reads.load(Ordering::Relaxed) != this.reads_at_start {
            this.head_began = Some(Instant::now());
        }
        let deadline = this.deadline();
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        if this.armed_for != Some(deadline) {
            this.sleep.as_mut().reset(deadline.into());
            this.armed_for = Some(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(reads: &Arc<AtomicU64>) -> HeadTimer {
        HeadTimer {
            reads: reads.clone(),
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_first_request_has_the_header_timeout_from_the_connect() {
        let reads = Arc::new(AtomicU64::new(0));
        let deadline = timer(&reads).head_deadline();
        assert_eq!(
            deadline.deadline(),
            deadline.started + Duration::from_secs(10)
        );
    }

    #[tokio::test]
    async fn an_idle_connection_has_the_keep_alive_timeout_until_a_byte_arrives() {
        let reads = Arc::new(AtomicU64::new(3));
        let mut deadline = Box::pin(timer(&reads).head_deadline());
        let started = deadline.started;
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(deadline.as_mut().poll(&mut cx).is_pending());
        assert_eq!(deadline.deadline(), started + Duration::from_secs(60));
        reads.fetch_add(1, Ordering::Relaxed);
        assert!(deadline.as_mut().poll(&mut cx).is_pending());
        let began = deadline.head_began.unwrap();
        assert_eq!(deadline.deadline(), began + Duration::from_secs(10));
        // Later bytes do not push the deadline: a trickling client is cut off all the same.
        reads.fetch_add(1, Ordering::Relaxed);
        assert!(deadline.as_mut().poll(&mut cx).is_pending());
        assert_eq!(deadline.head_began, Some(began));
    }
}
