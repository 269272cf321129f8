//! One client connection: a reader feeding received bytes to the core and a
//! writer carrying the core's outbound bytes to the socket.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use natrix_core::server::{CloseReason, Outbox, Session};
use natrix_core::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::clock;
use crate::driver::{Locked, Shared, Signal};
use crate::tls::TlsSetup;
use crate::ws;

/// Read buffer sizes: a connection starts small, doubles while its reads
/// fill the buffer (one read then carries many messages into one core
/// call) and halves after a run of small reads, so that a quiet connection
/// holds little memory. nats-server's read loop sizes its buffer the same
/// way (it halves after three reads under half the buffer; halving after
/// two under a quarter kept publishers' reads larger here).
const READ_CHUNK_MIN: usize = 512;
const READ_CHUNK_MAX: usize = 64 * 1024;
/// Reads of under a quarter of the buffer in a row before it halves.
const SMALL_READS_TO_SHRINK: u32 = 2;

/// Buffers handed to one vectored write: the kernel refuses more than
/// `IOV_MAX` (1024), and 64 chunks of an outbox are megabytes.
const WRITE_SLICES_MAX: usize = 64;

/// Serves one accepted TCP connection until it closes.
pub async fn serve(shared: Arc<Shared>, tls: Option<Arc<TlsSetup>>, stream: TcpStream, peer: SocketAddr) {
    // Nagle would hold back small replies (PONG, +OK) waiting for an ACK.
    let _ = stream.set_nodelay(true);
    let (session, signal) = shared.connect(peer);
    match tls {
        None => run(shared, session, stream, signal, None).await,
        Some(tls) => {
            let mut stream = stream;
            let (conn, outbox) = (session.cid(), Arc::clone(session.outbox()));
            if !tls.handshake_first || !client_speaks_first(&stream, tls.handshake_first_fallback).await {
                // nats-server greets in plain text, then the client starts TLS.
                if let Some(info) = outbox.take(clock::now()).bytes {
                    if stream.write_all(&info).await.is_err() {
                        return shared.closed(conn, CloseReason::WriteError);
                    }
                    outbox.written(clock::now(), info.len());
                }
            }
            let handshake = tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls_stream)) => run(shared, session, tls_stream, signal, None).await,
                Ok(Err(e)) => {
                    shared.logger.at(
                        natrix_core::log::Level::Error,
                        format!("{peer} - cid:{} - TLS handshake error: {e}", conn.0),
                    );
                    shared.closed(conn, CloseReason::TlsHandshakeError);
                }
                Err(_) => shared.closed(conn, CloseReason::TlsHandshakeError),
            }
        }
    }
}

/// With `handshake_first` and a fallback wait: true when the client sent
/// something (its TLS ClientHello) within the wait, false when it is
/// waiting for INFO. Without a fallback, TLS comes first.
async fn client_speaks_first(stream: &TcpStream, fallback: Option<std::time::Duration>) -> bool {
    let Some(wait) = fallback else { return true };
    let mut byte = [0u8; 1];
    // Peeking leaves the bytes for the TLS handshake.
    matches!(tokio::time::timeout(wait, stream.peek(&mut byte)).await, Ok(Ok(n)) if n > 0)
}

/// Runs a connection: its reader on this task, its writer on another.
/// `ws` frames both ways when the client came over WebSocket.
pub(crate) async fn run<S>(shared: Arc<Shared>, session: Session, stream: S, signal: Arc<Signal>, ws: Option<ws::Framing>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (stop_reader, reader_stopped) = oneshot::channel();
    let (conn, outbox) = (session.cid(), Arc::clone(session.outbox()));
    let (ws_read, ws_write) = match ws {
        Some(f) => {
            let (r, w) = f.split(Arc::clone(&signal));
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    let write_task = tokio::spawn(write_loop(shared.clone(), conn, outbox, writer, signal, stop_reader, ws_write));
    read_loop(shared, session, reader, reader_stopped, ws_read).await;
    let _ = write_task.await;
}

async fn read_loop<R: AsyncRead>(
    shared: Arc<Shared>,
    mut session: Session,
    reader: R,
    mut stop: oneshot::Receiver<()>,
    mut ws: Option<ws::ReadSide>,
) {
    tokio::pin!(reader);
    let conn = session.cid();
    let mut chunk = READ_CHUNK_MIN;
    let mut small_reads = 0;
    let mut buf = BytesMut::with_capacity(chunk);
    loop {
        // What is left after a split shares its allocation with the bytes
        // handed to the core. Once the core holds nothing of them the whole
        // allocation is reused (a publisher's reads would otherwise fault a
        // fresh 64 KiB in each time). Too little left, or left over from a
        // larger size, and the read goes to a fresh allocation (reserving
        // could keep a larger one alive).
        let _reclaimed = buf.try_reclaim(chunk);
        if buf.capacity() < chunk / 4 || buf.capacity() > chunk * 2 {
            buf = BytesMut::with_capacity(chunk);
        }
        let room = buf.capacity();
        let mut full;
        let read = tokio::select! {
            r = reader.read_buf(&mut buf) => r,
            _ = &mut stop => return,
        };
        match read {
            Ok(0) => return shared.closed(conn, CloseReason::ClientClosed),
            Ok(n) => {
                full = n == room;
                if full {
                    chunk = (chunk * 2).min(READ_CHUNK_MAX);
                    small_reads = 0;
                } else if n < chunk / 4 {
                    small_reads += 1;
                    if small_reads >= SMALL_READS_TO_SHRINK {
                        chunk = (chunk / 2).max(READ_CHUNK_MIN);
                        small_reads = 0;
                    }
                } else {
                    small_reads = 0;
                }
                let received = buf.split();
                let wakes = crate::driver::wakes();
                match ws.as_mut() {
                    None => {
                        let mut received = received.freeze();
                        loop {
                            let pause = session.handle_received(clock::now(), &mut received, &mut Locked(&shared));
                            // Back-pressure: a receiver of this producer's
                            // messages is falling behind; the rest of the
                            // read waits.
                            if let Some(pause) = pause {
                                tokio::time::sleep(pause).await;
                            }
                            if received.is_empty() {
                                break;
                            }
                        }
                    }
                    Some(ws) => match ws.received(received, &mut session, &shared) {
                        Ok(Some(pause)) => tokio::time::sleep(pause).await,
                        Ok(None) => {}
                        Err(reason) => return shared.closed(conn, reason),
                    },
                }
                // Only a read that woke writers has someone to yield to.
                full &= crate::driver::wakes() != wakes;
            }
            Err(_) => return shared.closed(conn, CloseReason::ReadError),
        }
        // A read that filled the buffer likely has more behind it, and a
        // producer that finds bytes at every read never gives its thread
        // up: the writers it woke (its receivers') run first, so that they
        // keep up instead of their outboxes piling up to the stall gate.
        // (Yielding costs a poll of the I/O driver: not done for a read
        // that delivered to no one.)
        if full {
            tokio::task::yield_now().await;
        }
    }
}

/// Writes what the core queues in the connection's outbox, each time it
/// is woken, until the core closes it or the socket fails.
async fn write_loop<W: AsyncWrite>(
    shared: Arc<Shared>,
    conn: ConnId,
    outbox: Arc<Outbox>,
    writer: W,
    signal: Arc<Signal>,
    stop_reader: oneshot::Sender<()>,
    mut ws: Option<ws::WriteSide>,
) {
    tokio::pin!(writer);
    // What was taken and not yet fully written (advanced as writes take
    // it), how much of it the outbox has not heard of, and the chunks as
    // taken, handed back once written.
    let mut batch: Vec<Bytes> = Vec::with_capacity(4);
    let mut unreported = 0usize;
    let mut taken: Vec<Bytes> = Vec::with_capacity(4);
    let mut closed = None;
    loop {
        if batch.is_empty() {
            outbox.recycle(&mut taken);
            tokio::select! {
                () = signal.ready.notified() => {}
                () = signal.kill.notified() => break,
            }
            closed = outbox.take_chunks(clock::now(), &mut taken);
            unreported += taken.iter().map(Bytes::len).sum::<usize>();
            batch.extend(taken.iter().cloned());
            if let Some(ws) = ws.as_mut() {
                ws.frame(&mut batch, closed);
            }
        }
        if !batch.is_empty() {
            // Plain bytes are reported as each write takes them, so that
            // the core's count of what the client has not read (which
            // stalls producers, and cuts slow consumers) is not inflated
            // by a large batch; framed ones once the batch is written.
            let plain = ws.is_none();
            let mut progress = |n: usize| {
                let n = n.min(unreported);
                if plain && n > 0 {
                    unreported -= n;
                    outbox.written(clock::now(), n);
                }
            };
            let write =
                tokio::time::timeout(shared.write_deadline(), write_all_vectored(&mut writer, &mut batch, &mut progress));
            let result = tokio::select! {
                r = write => r,
                () = signal.kill.notified() => break,
            };
            match result {
                // No progress for the write deadline: the core decides, and
                // the write goes on unless it cuts the connection.
                Err(_elapsed) => {
                    shared.with_control(|c| c.handle_write_stalled(clock::now(), conn));
                    continue;
                }
                Ok(Err(_)) => {
                    let _ = stop_reader.send(());
                    return shared.closed(conn, CloseReason::WriteError);
                }
                Ok(Ok(())) => outbox.written(clock::now(), std::mem::take(&mut unreported)),
            }
        }
        if let Some(reason) = closed {
            if !reason.is_slow_consumer() {
                // Flush what the core queued before closing, bounded so a stuck peer cannot hold us.
                let _ = tokio::time::timeout(Duration::from_secs(2), writer.flush()).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), writer.shutdown()).await;
            }
            break;
        }
    }
    // The core already forgot the connection (or is told now); a slow
    // consumer's socket is dropped unflushed.
    let _ = stop_reader.send(());
}

/// Writes all of `batch`, telling `progress` how many bytes each write took.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &mut Vec<Bytes>,
    progress: &mut impl FnMut(usize),
) -> std::io::Result<()> {
    let mut start = 0;
    while start < batch.len() {
        let slices: Vec<IoSlice<'_>> = batch[start..].iter().take(WRITE_SLICES_MAX).map(|b| IoSlice::new(b)).collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        progress(n);
        while n > 0 {
            let head = &mut batch[start];
            let take = n.min(head.len());
            head.advance(take);
            n -= take;
            if head.is_empty() {
                start += 1;
            }
        }
    }
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer taking at most `max` bytes a call, from at most
    /// `WRITE_SLICES_MAX` buffers (as the kernel takes at most IOV_MAX).
    struct Partial {
        out: Vec<u8>,
        max: usize,
    }

    impl AsyncWrite for Partial {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.get_mut().out.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            assert!(bufs.len() <= WRITE_SLICES_MAX, "{} buffers in one write", bufs.len());
            let this = self.get_mut();
            let mut left = this.max;
            for b in bufs {
                let n = b.len().min(left);
                this.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            std::task::Poll::Ready(Ok(this.max - left))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn many_chunks_are_written_whole_and_in_order_in_bounded_writes() {
        let chunks: Vec<Bytes> = (0..300u32).map(|i| Bytes::from(vec![(i % 251) as u8; 100 + i as usize])).collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut batch = chunks.clone();
        let mut writer = Partial { out: Vec::new(), max: 7_777 };
        let mut reported = 0;
        write_all_vectored(&mut writer, &mut batch, &mut |n| reported += n).await.expect("written");
        assert!(batch.is_empty());
        assert_eq!(reported, expected.len());
        assert_eq!(writer.out, expected);
        // The writer's clones are gone: the chunks are the outbox's alone again.
        assert!(chunks.into_iter().all(|c| c.is_unique()));
    }
}
