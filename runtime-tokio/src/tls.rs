//! TLS for client connections (rustls), configured from the `tls {}` block
//! or the `--tls*` flags.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Duration;

use natrix_core::config::TlsOptions;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up; reported at start-up.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Io(String, std::io::Error),
    /// A file held no usable certificate or key.
    Empty(String),
    /// rustls refused the configuration.
    Rustls(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Io(path, e) => write!(f, "error reading {path}: {e}"),
            TlsError::Empty(what) => write!(f, "no {what} found"),
            TlsError::Rustls(e) => write!(f, "TLS configuration error: {e}"),
        }
    }
}

/// A ready acceptor and the options that shape the handshake.
pub struct TlsSetup {
    /// The rustls acceptor.
    pub acceptor: TlsAcceptor,
    /// Handshake timeout.
    pub timeout: Duration,
    /// TLS before INFO.
    pub handshake_first: bool,
    /// With `handshake_first`: INFO in plain text after all when the
    /// client sent nothing for this long.
    pub handshake_first_fallback: Option<Duration>,
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = File::open(path).map_err(|e| TlsError::Io(path.to_owned(), e))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut BufReader::new(file)).collect();
    let certs = certs.map_err(|e| TlsError::Io(path.to_owned(), e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty(format!("certificate in {path}")));
    }
    Ok(certs)
}

fn read_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file = File::open(path).map_err(|e| TlsError::Io(path.to_owned(), e))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| TlsError::Io(path.to_owned(), e))?
        .ok_or_else(|| TlsError::Empty(format!("private key in {path}")))
}

/// Builds the acceptor from the options.
pub fn setup(opts: &TlsOptions) -> Result<TlsSetup, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_file = opts.cert_file.as_deref().ok_or(TlsError::Empty("cert_file".to_owned()))?;
    let key_file = opts.key_file.as_deref().ok_or(TlsError::Empty("key_file".to_owned()))?;
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = if opts.verify || opts.verify_and_map {
        let ca_file = opts.ca_file.as_deref().ok_or(TlsError::Empty("ca_file".to_owned()))?;
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca_file)? {
            roots.add(cert).map_err(|e| TlsError::Rustls(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let timeout = if opts.timeout.is_zero() { Duration::from_secs(2) } else { opts.timeout };
    Ok(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        timeout,
        handshake_first: opts.handshake_first,
        handshake_first_fallback: opts.handshake_first_fallback,
    })
}
