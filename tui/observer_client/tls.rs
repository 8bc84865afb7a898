//! TLS for `--gateway https://…`: rustls with the system's root certificates,
//! or with `--insecure` any certificate (the handshake's signatures are still
//! checked, so the connection is encrypted, just not authenticated). An
//! `https://` address never gets a plaintext connection: without a TLS
//! configuration tonic refuses to connect to one.

use std::sync::Arc;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct};
use tonic::transport::{ClientTlsConfig, Endpoint};

/// How greet-top checks a gateway's certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Against the system's root certificates, and the name in the URL.
    #[default]
    SystemRoots,
    /// Not at all (`--insecure`): for a self-signed certificate.
    Insecure,
}

/// A connector for the REST client: `http` as it is for http:// URLs,
/// TLS over it for https:// ones, the certificate checked as `verify` says.
pub fn https_connector(http: HttpConnector, verify: Verify) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let provider = Arc::new(ring::default_provider());
    let builder = HttpsConnectorBuilder::new();
    let builder = match verify {
        Verify::SystemRoots => builder.with_provider_and_native_roots(provider).map_err(|err| {
            anyhow::anyhow!(
                "cannot load the system's CA certificates ({err}); install ca-certificates, or pass --insecure to \
                 skip verifying the gateway's certificate"
            )
        })?,
        Verify::Insecure => {
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate::new()))
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

/// `endpoint` with TLS when its URL is `https://`; unchanged otherwise.
pub(super) fn secure(endpoint: Endpoint, verify: Verify) -> anyhow::Result<Endpoint> {
    if endpoint.uri().scheme_str() != Some("https") {
        return Ok(endpoint);
    }
    let url = endpoint.uri().to_string();
    let config = ClientTlsConfig::new();
    let secured = match verify {
        Verify::SystemRoots => endpoint.tls_config(config.with_native_roots()),
        Verify::Insecure => endpoint.tls_config_with_verifier(config, Arc::new(AnyCertificate::new())),
    };
    secured.map_err(|err| {
        let cause = root_cause(&err);
        anyhow::anyhow!(
            "cannot set up TLS for {url}: {cause}; install the system's CA certificates (ca-certificates), \
             or pass --insecure to skip verifying the gateway's certificate"
        )
    })
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Accepts any certificate, but checks that the server holds its key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyCertificate {
    fn new() -> Self {
        AnyCertificate {
            algorithms: ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client of a gateway's REST API at `base`, an https:// one's certificate
/// checked as `verify` says; fails when the system's roots cannot be loaded.
pub fn rest_client(base: impl Into<String>, verify: Verify) -> anyhow::Result<greet_demo::rest_client::RestClient> {
    let connector = https_connector(greet_demo::rest_client::http_connector(), verify)?;
    Ok(greet_demo::rest_client::RestClient::with_connector(
        base.into(),
        connector,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_https_urls_get_tls() {
        let plain = secure(Endpoint::from_static("http://127.0.0.1:9092"), Verify::Insecure).unwrap();
        assert_eq!(plain.uri().scheme_str(), Some("http"));
        // Any certificate: the verifier itself has no opinion on one.
        let verifier = AnyCertificate::new();
        assert!(!verifier.supported_verify_schemes().is_empty());
        let name = ServerName::try_from("gw").unwrap();
        let cert = CertificateDer::from(vec![0u8; 4]);
        assert!(
            verifier
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
    }
}
