//! SSL_GET's TLS client (rustls, TLS 1.2 and 1.3). As keepalived without an `SSL` block,
//! the server's certificate is not verified: a check asks whether the server answers, not
//! who it is (real servers commonly carry the service's name, or a self-signed
//! certificate, not their own address). The handshake's signatures are still checked, so
//! the server must hold the key of the certificate it shows. The server name is sent (SNI)
//! only with `enable_sni` and a DNS virtualhost, as keepalived sends it.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

/// Accepts any certificate; checks the handshake's signatures with the provider's
/// algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One client configuration for every check (immutable; sessions are resumed across checks
/// of a server, as a browser would).
fn connector() -> Result<TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map(TlsConnector::from)
}

/// The TLS handshake over `tcp` to `addr`; `sni`: the name to send, if any.
pub async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    sni: Option<&str>,
) -> Result<TlsStream<TcpStream>, String> {
    // An IP address as the name: rustls then sends no SNI.
    let name = match sni.map(|n| ServerName::try_from(n.to_string())) {
        Some(Ok(n)) => n,
        Some(Err(_)) | None => ServerName::IpAddress(addr.ip().into()),
    };
    connector()?
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}
