//! TLS with a CA and server certificate generated at test time.

mod common;

use async_nats::ConnectOptions;
use common::*;
use natrix_conformance::TempDir;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Pki {
    dir: TempDir,
}

impl Pki {
    /// A CA and a server certificate for 127.0.0.1 and localhost, as PEM files.
    fn generate() -> Pki {
        let dir = TempDir::new("pki");
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "natrix conformance CA");
        let ca_cert = ca_params.clone().self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        dir.write("ca.pem", ca_cert.pem());
        dir.write("server-cert.pem", leaf.pem());
        dir.write("server-key.pem", leaf_key.serialize_pem());
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[tokio::test]
async fn tls_connect_with_generated_ca() {
    let pki = Pki::generate();
    let server = Server::start(ServerOptions::new().args([
        "--tls".to_string(),
        "--tlscert".to_string(),
        pki.path("server-cert.pem"),
        "--tlskey".to_string(),
        pki.path("server-key.pem"),
    ]));
    let client = tokio::time::timeout(
        STEP,
        ConnectOptions::new()
            .add_root_certificates(pki.path("ca.pem").into())
            .require_tls(true)
            .connect(server.client_url.as_str()),
    )
    .await
    .expect("TLS connect timed out")
    .unwrap_or_else(|e| panic!("TLS connect to {}: {e}\n{}", server.target(), server.log()));
    assert!(
        client.server_info().tls_required,
        "INFO must announce tls_required"
    );
    let mut sub = client.subscribe("secure").await.unwrap();
    client.publish("secure", "over tls".into()).await.unwrap();
    assert_eq!(next(&mut sub).await.payload, "over tls");
}

#[tokio::test]
async fn tls_server_rejects_client_that_does_not_trust_it() {
    let pki = Pki::generate();
    let server = Server::start(ServerOptions::new().args([
        "--tls".to_string(),
        "--tlscert".to_string(),
        pki.path("server-cert.pem"),
        "--tlskey".to_string(),
        pki.path("server-key.pem"),
    ]));
    // Without the CA the handshake must fail on the client side.
    let result = tokio::time::timeout(
        STEP,
        ConnectOptions::new()
            .require_tls(true)
            .connect(server.client_url.as_str()),
    )
    .await
    .expect("connect must fail fast");
    // It fails in the TLS handshake, on the certificate: not because the
    // server refused, sent nothing or spoke plain text.
    let err = result.expect_err("an untrusted certificate must not be accepted");
    let text = err.to_string().to_lowercase();
    assert!(text.contains("invalid peer certificate"), "a certificate error: {text}");
    // The same server, trusted, serves: only the trust was missing.
    let client = tokio::time::timeout(
        STEP,
        ConnectOptions::new()
            .add_root_certificates(pki.path("ca.pem").into())
            .require_tls(true)
            .connect(server.client_url.as_str()),
    )
    .await
    .expect("TLS connect timed out")
    .unwrap_or_else(|e| panic!("TLS connect to {}: {e}\n{}", server.target(), server.log()));
    client.flush().await.unwrap();
}

/// `handshake_first: 300ms` (nats-server's "auto" mode, as async-nats's own
/// `tls_auto` test starts it): a client that waits for INFO gets it in
/// plain text after the wait and upgrades as usual; a client that starts
/// with TLS gets TLS first.
#[tokio::test]
async fn tls_handshake_first_with_a_fallback_serves_both_kinds_of_client() {
    use tokio::io::AsyncBufReadExt;
    let pki = Pki::generate();
    let config = format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  handshake_first: 300ms\n}}\n",
        pki.path("server-cert.pem"),
        pki.path("server-key.pem")
    );
    let server = Server::start(ServerOptions::new().config(config));
    // A raw client that sends nothing gets INFO in plain text, after the wait.
    let started = std::time::Instant::now();
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(STEP, reader.read_line(&mut line))
        .await
        .expect("INFO after the fallback wait")
        .unwrap();
    assert!(line.starts_with("INFO {") && line.contains("\"tls_required\":true"), "{line:?}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "INFO only after the wait: {:?}", started.elapsed());
    // A client that waits for INFO, then upgrades.
    let upgrading = tokio::time::timeout(
        STEP,
        ConnectOptions::new()
            .add_root_certificates(pki.path("ca.pem").into())
            .require_tls(true)
            .connect(server.client_url.as_str()),
    )
    .await
    .expect("connect timed out")
    .unwrap_or_else(|e| panic!("TLS after INFO: {e}\n{}", server.log()));
    // A client that starts with TLS.
    let first = tokio::time::timeout(
        STEP,
        ConnectOptions::new()
            .add_root_certificates(pki.path("ca.pem").into())
            .tls_first()
            .connect(server.client_url.as_str()),
    )
    .await
    .expect("connect timed out")
    .unwrap_or_else(|e| panic!("TLS first: {e}\n{}", server.log()));
    for client in [&upgrading, &first] {
        let mut sub = client.subscribe("echo").await.unwrap();
        client.publish("echo", "hello".into()).await.unwrap();
        assert_eq!(next(&mut sub).await.payload, "hello");
    }
}
