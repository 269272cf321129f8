//! One client connection: a reader feeding received bytes to the core and a
//! writer carrying the core's outbound bytes to the socket.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use natrix_core::server::CloseReason;
use natrix_core::ConnId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::clock;
use crate::driver::{Shared, WriterMsg};
use crate::tls::TlsSetup;

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
/// Most buffers gathered into one vectored write.
const WRITE_BATCH_MAX: usize = 64;

/// Serves one accepted TCP connection until it closes.
pub async fn serve(shared: Arc<Shared>, tls: Option<Arc<TlsSetup>>, stream: TcpStream, peer: SocketAddr) {
    // Nagle would hold back small replies (PONG, +OK) waiting for an ACK.
    let _ = stream.set_nodelay(true);
    let (conn, mut rx, kill) = shared.connect(peer);
    match tls {
        None => run(shared, conn, stream, rx, kill).await,
        Some(tls) => {
            let mut stream = stream;
            if !tls.handshake_first {
                // nats-server greets in plain text, then the client starts TLS.
                if let Some(WriterMsg::Bytes(info)) = rx.recv().await {
                    if stream.write_all(&info).await.is_err() {
                        return shared.closed(conn, CloseReason::WriteError);
                    }
                    shared.with_server(|s| s.handle_written(clock::now(), conn, info.len()));
                }
            }
            let handshake = tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(tls_stream)) => run(shared, conn, tls_stream, rx, kill).await,
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

async fn run<S>(
    shared: Arc<Shared>,
    conn: ConnId,
    stream: S,
    rx: mpsc::UnboundedReceiver<WriterMsg>,
    kill: Arc<Notify>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (stop_reader, reader_stopped) = oneshot::channel();
    let write_task = tokio::spawn(write_loop(shared.clone(), conn, writer, rx, kill, stop_reader));
    read_loop(shared, conn, reader, reader_stopped).await;
    let _ = write_task.await;
}

async fn read_loop<R: AsyncRead>(
    shared: Arc<Shared>,
    conn: ConnId,
    reader: R,
    mut stop: oneshot::Receiver<()>,
) {
    tokio::pin!(reader);
    let mut chunk = READ_CHUNK_MIN;
    let mut small_reads = 0;
    let mut buf = BytesMut::with_capacity(chunk);
    loop {
        // What is left after a split shares its allocation with the bytes
        // handed to the core: too little left, or left over from a larger
        // size, and the read goes to a fresh allocation (reserving could
        // keep a larger one alive).
        if buf.capacity() < chunk / 4 || buf.capacity() > chunk * 2 {
            buf = BytesMut::with_capacity(chunk);
        }
        let room = buf.capacity();
        let read = tokio::select! {
            r = reader.read_buf(&mut buf) => r,
            _ = &mut stop => return,
        };
        match read {
            Ok(0) => return shared.closed(conn, CloseReason::ClientClosed),
            Ok(n) => {
                if n == room {
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
                let bytes = buf.split().freeze();
                if let Some(pause) = shared.with_server(|s| s.handle_received(clock::now(), conn, bytes)) {
                    // Back-pressure: a receiver of this producer's messages is falling behind.
                    tokio::time::sleep(pause).await;
                }
            }
            Err(_) => return shared.closed(conn, CloseReason::ReadError),
        }
    }
}

async fn write_loop<W: AsyncWrite>(
    shared: Arc<Shared>,
    conn: ConnId,
    writer: W,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    kill: Arc<Notify>,
    stop_reader: oneshot::Sender<()>,
) {
    tokio::pin!(writer);
    let mut batch: Vec<Bytes> = Vec::with_capacity(WRITE_BATCH_MAX);
    let mut close = None;
    while close.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Bytes(b) => batch.push(b),
                WriterMsg::Close(reason) => {
                    close = Some(reason);
                    break;
                }
            }
            if batch.len() < WRITE_BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        let written: usize = batch.iter().map(Bytes::len).sum();
        let result = tokio::select! {
            r = write_all_vectored(&mut writer, &mut batch) => r,
            () = kill.notified() => {
                // The core already forgot the connection; drop the socket unflushed.
                let _ = stop_reader.send(());
                return;
            }
        };
        if result.is_err() {
            let _ = stop_reader.send(());
            return shared.closed(conn, CloseReason::WriteError);
        }
        if close.is_none() && written > 0 {
            shared.with_server(|s| s.handle_written(clock::now(), conn, written));
        }
    }
    // Flush what the core sent before closing, bounded so a stuck peer cannot hold us.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer.flush()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), writer.shutdown()).await;
    let _ = stop_reader.send(());
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(writer: &mut W, batch: &mut Vec<Bytes>) -> std::io::Result<()> {
    let mut start = 0;
    while start < batch.len() {
        let slices: Vec<IoSlice<'_>> = batch[start..].iter().map(|b| IoSlice::new(b)).collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
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
