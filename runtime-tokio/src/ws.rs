//! WebSocket clients: the listener's upgrade (after TLS for `wss://`),
//! then the connection runs as any other, its bytes framed both ways by
//! the core's pure codec (`natrix_core::websocket`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natrix_core::config::WebsocketOptions;
use natrix_core::log::Level;
use natrix_core::server::{CloseReason, Session, Transport};
use natrix_core::websocket::frame::{self, close_frame, control_frame, Event, FrameError, FrameReader, FrameWriter, OpCode};
use natrix_core::websocket::handshake::{self, CookieNames, Outcome, Policy, MAX_REQUEST_BYTES};
use natrix_core::websocket::origin::Origin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clock;
use crate::conn;
use crate::driver::{Locked, Shared, Signal};
use crate::tls::TlsSetup;

/// What every WebSocket connection of a listener shares.
pub struct WsSetup {
    /// MQTT over WebSocket (`/mqtt`): the MQTT sessions' setup, when an
    /// MQTT listener is configured.
    mqtt: Option<Arc<crate::mqtt::MqttSetup>>,
    policy: Policy,
    tls: Option<Arc<TlsSetup>>,
    handshake_timeout: Option<Duration>,
    max_payload: usize,
}

impl WsSetup {
    /// The listener's setup from its options (validated at start-up).
    pub fn new(ws: &WebsocketOptions, tls: Option<Arc<TlsSetup>>, max_payload: usize) -> Self {
        let policy = Policy {
            compression: ws.compression,
            same_origin: ws.same_origin,
            allowed_origins: ws.allowed_origins.iter().filter_map(|o| Origin::parse_allowed(o).ok()).collect(),
            tls: tls.is_some(),
            headers: ws.headers.clone(),
            cookie_names: CookieNames {
                jwt: ws.jwt_cookie.clone(),
                user: ws.user_cookie.clone(),
                pass: ws.pass_cookie.clone(),
                token: ws.token_cookie.clone(),
            },
            mqtt: false,
        };
        let handshake_timeout = (!ws.handshake_timeout.is_zero()).then_some(ws.handshake_timeout);
        WsSetup { mqtt: None, policy, tls, handshake_timeout, max_payload }
    }
}

impl WsSetup {
    /// Accepts MQTT clients on `/mqtt` (nats-server answers 404 there
    /// without an MQTT listener).
    pub fn set_mqtt(&mut self, mqtt: Option<Arc<crate::mqtt::MqttSetup>>) {
        self.policy.mqtt = mqtt.is_some();
        self.mqtt = mqtt;
    }
}

/// Serves one accepted connection on the WebSocket listener.
pub async fn serve(shared: Arc<Shared>, setup: Arc<WsSetup>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let deadline = setup.handshake_timeout.map(|t| tokio::time::Instant::now() + t);
    match setup.tls.clone() {
        None => upgrade(shared, setup, stream, peer, deadline).await,
        Some(tls) => {
            let timeout = deadline.map_or(tls.timeout, |d| d.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(timeout, tls.acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => upgrade(shared, setup, tls_stream, peer, deadline).await,
                Ok(Err(e)) => shared.logger.at(Level::Error, format!("{peer} - websocket TLS handshake error: {e}")),
                Err(_) => shared.logger.at(Level::Error, format!("{peer} - websocket TLS handshake timeout")),
            }
        }
    }
}

async fn upgrade<S>(shared: Arc<Shared>, setup: Arc<WsSetup>, mut stream: S, peer: SocketAddr, deadline: Option<tokio::time::Instant>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read = read_request(&mut stream, &setup.policy);
    let outcome = match deadline {
        Some(at) => match tokio::time::timeout_at(at, read).await {
            Ok(outcome) => outcome,
            Err(_) => return shared.logger.at(Level::Error, format!("{peer} - websocket handshake error: timeout")),
        },
        None => read.await,
    };
    let upgrade = match outcome {
        Some(Outcome::Accept(upgrade)) => upgrade,
        Some(Outcome::Reject(rejection)) => {
            shared.logger.at(Level::Error, format!("{peer} - websocket handshake error: {}", rejection.reason));
            let _ = stream.write_all(&rejection.response()).await;
            let _ = stream.shutdown().await;
            return;
        }
        // The client went away mid-request.
        Some(Outcome::Incomplete) | None => return,
    };
    if stream.write_all(&upgrade.response).await.is_err() {
        return;
    }
    // nats-server shows the forwarded address of a client behind a proxy.
    let shown = upgrade.forwarded_ip.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
    if upgrade.mqtt {
        let Some(mqtt) = setup.mqtt.clone() else { return };
        let frames = MqttFrames {
            reader: FrameReader::new(upgrade.compress, mqtt.session.max_payload_bytes.saturating_add(70 * 1024)),
            writer: FrameWriter::new(upgrade.compress, upgrade.browser),
            events: Vec::new(),
            owed: Vec::new(),
        };
        return crate::mqtt::run(shared, &mqtt, stream, shown, Some(frames)).await;
    }
    let (mut session, signal) = shared.connect_via(shown, Transport::Websocket);
    session.set_cookies(upgrade.cookies);
    let framing = Framing {
        reader: FrameReader::new(upgrade.compress, setup.max_payload),
        writer: FrameWriter::new(upgrade.compress, upgrade.browser),
    };
    conn::run(shared, session, stream, signal, Some(framing)).await;
}

/// Reads the upgrade request; `None` when the client hung up first.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, policy: &Policy) -> Option<Outcome> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 4096];
        let room = (MAX_REQUEST_BYTES + 1).saturating_sub(buf.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match handshake::handshake(&buf, policy) {
            Outcome::Incomplete => continue,
            done => return Some(done),
        }
    }
}

/// Frame codecs for one connection, before it is split into its reader and writer.
pub struct Framing {
    reader: FrameReader,
    writer: FrameWriter,
}

/// Control frames the reader owes the client (pongs, the close echo),
/// written by the writer ahead of its next batch.
#[derive(Default)]
struct Owed {
    frames: Vec<Bytes>,
    close_sent: bool,
}

impl Framing {
    /// The reader's and the writer's halves; `signal` wakes the writer.
    pub(crate) fn split(self, signal: Arc<Signal>) -> (ReadSide, WriteSide) {
        let owed = Arc::new(Mutex::new(Owed::default()));
        (
            ReadSide { frames: self.reader, owed: Arc::clone(&owed), signal, events: Vec::new() },
            WriteSide { frames: self.writer, owed },
        )
    }
}

fn lock(owed: &Mutex<Owed>) -> std::sync::MutexGuard<'_, Owed> {
    match owed.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The reading half: frames in, NATS bytes to the session.
pub(crate) struct ReadSide {
    frames: FrameReader,
    owed: Arc<Mutex<Owed>>,
    signal: Arc<Signal>,
    events: Vec<Event>,
}

/// Most pongs owed at once: a client that pings faster than it reads gets
/// no more than this many answers queued.
const MAX_OWED_FRAMES: usize = 64;

impl ReadSide {
    /// Decodes what was read and feeds the NATS bytes to the session; an
    /// error is the reason to close with (its close frame already owed).
    pub(crate) fn received(
        &mut self,
        bytes: BytesMut,
        session: &mut Session,
        shared: &Shared,
    ) -> Result<Option<Duration>, CloseReason> {
        let decoded = self.frames.read(bytes, &mut self.events);
        let mut pause = None;
        let mut result = Ok(());
        for event in self.events.drain(..) {
            match event {
                Event::Data(data) => {
                    pause = session.handle_received_all(clock::now(), data, &mut Locked(shared)).max(pause);
                }
                Event::Ping(payload) => {
                    let mut owed = lock(&self.owed);
                    if owed.frames.len() < MAX_OWED_FRAMES {
                        owed.frames.push(control_frame(OpCode::Pong, &payload));
                    }
                    drop(owed);
                    self.signal.ready.notify_one();
                }
                Event::Close(reply) => {
                    let mut owed = lock(&self.owed);
                    owed.frames.extend(reply);
                    owed.close_sent = true;
                    result = Err(CloseReason::ClientClosed);
                    break;
                }
            }
        }
        self.events.clear();
        if let (Err(e), Ok(())) = (&decoded, &result) {
            let mut owed = lock(&self.owed);
            owed.frames.push(e.close_frame());
            owed.close_sent = true;
            result = Err(match e {
                FrameError::TooBig => CloseReason::MaxPayloadExceeded,
                _ => CloseReason::ReadError,
            });
        }
        result.map(|()| pause)
    }
}

/// The writing half: the outbox's NATS bytes framed, owed control frames
/// first, and a close frame after the last bytes when the server closes.
pub(crate) struct WriteSide {
    frames: FrameWriter,
    owed: Arc<Mutex<Owed>>,
}

impl WriteSide {
    /// Frames `batch` in place; `closed` is the reason the core closed the
    /// connection, if it did.
    pub(crate) fn frame(&mut self, batch: &mut Vec<Bytes>, closed: Option<CloseReason>) {
        self.frames.frame(batch);
        let mut owed = lock(&self.owed);
        if !owed.frames.is_empty() {
            let mut framed = std::mem::take(&mut owed.frames);
            framed.append(batch);
            *batch = framed;
        }
        if let Some(reason) = closed {
            if !owed.close_sent {
                owed.close_sent = true;
                batch.push(close_frame(close_status(reason), reason.as_str()));
            }
        }
    }
}

/// nats-server's close status for a server-side close.
fn close_status(reason: CloseReason) -> u16 {
    use frame::status;
    match reason {
        CloseReason::ClientClosed => status::NORMAL,
        CloseReason::AuthenticationTimeout
        | CloseReason::AuthenticationViolation
        | CloseReason::SlowConsumerPendingBytes
        | CloseReason::SlowConsumerWriteDeadline
        | CloseReason::MaxAccountConnectionsExceeded
        | CloseReason::MaxConnectionsExceeded
        | CloseReason::MaxControlLineExceeded
        | CloseReason::MaxSubscriptionsExceeded
        | CloseReason::AuthenticationExpired
        | CloseReason::AuthenticationRevoked => status::POLICY_VIOLATION,
        CloseReason::TlsHandshakeError => status::TLS_HANDSHAKE,
        CloseReason::ParseError | CloseReason::ProtocolViolation | CloseReason::BadClientProtocolVersion => {
            status::PROTOCOL_ERROR
        }
        CloseReason::MaxPayloadExceeded => status::MESSAGE_TOO_BIG,
        CloseReason::WriteError | CloseReason::ReadError | CloseReason::StaleConnection | CloseReason::ServerShutdown => {
            status::GOING_AWAY
        }
        _ => status::INTERNAL_ERROR,
    }
}

/// WebSocket frames around an MQTT connection, which runs its own loop
/// (`crate::mqtt::run`).
pub struct MqttFrames {
    reader: FrameReader,
    writer: FrameWriter,
    events: Vec<Event>,
    /// Pongs and the close echo, written ahead of the next bytes.
    owed: Vec<Bytes>,
}

impl MqttFrames {
    /// The MQTT bytes in what was read; `Err` once the client closed or
    /// sent a bad frame (the close frame is owed).
    pub(crate) fn decode(&mut self, read: &[u8]) -> Result<Vec<Bytes>, CloseReason> {
        let decoded = self.reader.read(BytesMut::from(read), &mut self.events);
        let mut data = Vec::new();
        for event in self.events.drain(..) {
            match event {
                Event::Data(bytes) => data.push(bytes),
                Event::Ping(payload) if self.owed.len() < MAX_OWED_FRAMES => {
                    self.owed.push(control_frame(OpCode::Pong, &payload));
                }
                Event::Ping(_) => {}
                Event::Close(reply) => {
                    self.owed.extend(reply);
                    return Err(CloseReason::ClientClosed);
                }
            }
        }
        if let Err(e) = decoded {
            self.owed.push(e.close_frame());
            return Err(CloseReason::ReadError);
        }
        Ok(data)
    }

    /// `bytes` framed, after the control frames owed.
    pub(crate) fn encode(&mut self, bytes: Option<Bytes>) -> Vec<Bytes> {
        let mut batch: Vec<Bytes> = bytes.into_iter().collect();
        self.writer.frame(&mut batch);
        let mut out = std::mem::take(&mut self.owed);
        out.append(&mut batch);
        out
    }
}
