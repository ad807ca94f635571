//! HTTPS: with a certificate configured, `serve` answers over TLS to a client that trusts the
//! issuing authority, refuses plain HTTP and clients that do not trust it, and returns once it
//! is told to shut down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{rustls, TlsConnector};

use vigil_analysis::Engine;
use vigil_server::sqlite::open_stores;
use vigil_server::{AppState, ServerConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A client that trusts `roots` only.
fn connector(roots: rustls::RootCertStore) -> TlsConnector {
    #[allow(deprecated)] // ring has no post-quantum key exchange; the server uses it too
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Writes and flushes `data` (the service builds tokio without its I/O helpers).
async fn write_all(stream: &mut (impl AsyncWrite + Unpin), mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, data)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
}

/// Reads what the peer sends until it closes or fails (or five seconds pass).
async fn read_all(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut filled = ReadBuf::new(&mut buf);
        let read = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut filled));
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(())) if !filled.filled().is_empty() => out.extend_from_slice(filled.filled()),
            _ => return out,
        }
    }
}

async fn https_health(addr: SocketAddr, connector: &TlsConnector) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    write_all(&mut tls, HEALTH).await?;
    Ok(read_all(&mut tls).await)
}

#[tokio::test]
async fn https_answers_with_the_certificate_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        tls_cert: Some(fixture("server.pem")),
        tls_key: Some(fixture("server.key")),
        ..ServerConfig::default()
    };
    let stores = open_stores(dir.path(), Duration::from_secs(5))
        .await
        .unwrap();
    let engine = Arc::new(Engine::with_defaults().unwrap());
    let state = AppState::new(config, BTreeMap::new(), engine, stores).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vigil_server::serve(state, listener, async {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let answer = https_health(addr, &connector(roots)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains("strict-transport-security: max-age="),
        "{answer}"
    );

    // A client that does not trust the authority gives up in the handshake.
    let untrusting = https_health(addr, &connector(rustls::RootCertStore::empty())).await;
    assert!(untrusting.is_err(), "{untrusting:?}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    write_all(&mut plain, HEALTH).await.unwrap();
    let answer = read_all(&mut plain).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    served.unwrap();
}
