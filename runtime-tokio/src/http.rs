//! The HTTP monitoring listener (`-m PORT`). A minimal HTTP/1.1 server:
//! GET requests only, one request per connection; the core renders the body.

use std::sync::Arc;
use std::time::Duration;

use natrix_core::log::Level;
use natrix_core::monitor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::clock;
use crate::driver::Shared;
use crate::process::ProcessSampler;

/// Largest request head accepted.
const REQUEST_MAX_BYTES: usize = 16 * 1024;

/// Serves monitoring requests until the process exits.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, base_path: String) {
    let sampler = Arc::new(ProcessSampler::new());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (shared, sampler, base) = (shared.clone(), sampler.clone(), base_path.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), answer(shared, sampler, stream, &base)).await;
                });
            }
            Err(e) => {
                shared.logger.at(Level::Error, format!("monitoring accept error: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(shared: Arc<Shared>, sampler: Arc<ProcessSampler>, mut stream: TcpStream, base: &str) {
    let mut buf = Vec::with_capacity(1024);
    let target = loop {
        let mut chunk = [0u8; 2048];
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                if req.method != Some("GET") && req.method != Some("HEAD") {
                    return respond(&mut stream, 405, "text/plain", "method not allowed\n").await;
                }
                break req.path.unwrap_or("/").to_owned();
            }
            Ok(httparse::Status::Partial) if buf.len() < REQUEST_MAX_BYTES => continue,
            _ => return respond(&mut stream, 400, "text/plain", "bad request\n").await,
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let path = path.strip_prefix(base.trim_end_matches('/')).unwrap_or(path);
    let process = sampler.sample();
    let response = shared.with_control(|c| monitor::handle(c, clock::now(), clock::wall(), &process, path, query));
    respond(&mut stream, response.status, response.content_type, &response.body).await;
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
