//! The chaincode-as-a-service gRPC server: serves `protos.Chaincode/Connect` over TLS (ALPN h2,
//! optional client-certificate auth) with Fabric's 100 MiB message limit.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fabric_protos::protos::ChaincodeMessage;
use fabric_protos::protos::chaincode_server::{Chaincode, ChaincodeServer};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::contract::Contract;
use crate::driver::serve_stream;

/// Fabric's maximum gRPC message size, both directions.
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

/// How long running transactions may take to finish after a shutdown request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable names Fabric's documentation uses.
pub mod env {
    /// `host:port` to listen on.
    pub const ADDRESS: &str = "CHAINCODE_SERVER_ADDRESS";
    /// The package id (`label:sha256`) the peer launched.
    pub const ID: &str = "CHAINCODE_ID";
    /// PEM server certificate file.
    pub const TLS_CERT: &str = "CHAINCODE_TLS_CERT";
    /// PEM server private key file.
    pub const TLS_KEY: &str = "CHAINCODE_TLS_KEY";
    /// PEM CA certificate file; when set, clients must present a certificate it signed.
    pub const CLIENT_CA_CERT: &str = "CHAINCODE_CLIENT_CA_CERT";
}

/// The configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// The address does not parse as `host:port`.
    #[error("{var}={value:?} is not a socket address (expected e.g. 127.0.0.1:9999)")]
    Address {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The package id is not `label:hash`.
    #[error("{var}={value:?} is not a package id (expected label:sha256hex)")]
    PackageId {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// Only one of certificate and key is set.
    #[error("{set} is set but {missing} is not; TLS needs both")]
    HalfTls {
        /// The variable that is set.
        set: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {var} file {path}: {source}")]
    Read {
        /// The variable naming the file.
        var: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// TLS material, already read from disk.
#[derive(Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
    /// PEM CA for client certificates; `Some` makes client auth mandatory.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_auth", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything the server needs, parsed once at the edge.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub address: SocketAddr,
    /// The package id to register with.
    pub chaincode_id: String,
    /// TLS, or `None` for plaintext (tests only: Fabric peers expect TLS in production).
    pub tls: Option<TlsConfig>,
}

impl ServerConfig {
    /// Read the configuration from the process environment (see [`mod@env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Read the configuration through `var` (a lookup of environment-style variables).
    pub fn from_vars(var: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let address_text = var(env::ADDRESS).ok_or(ConfigError::Missing(env::ADDRESS))?;
        let address = address_text.parse().map_err(|_| ConfigError::Address {
            var: env::ADDRESS,
            value: address_text.clone(),
        })?;
        let chaincode_id = var(env::ID).ok_or(ConfigError::Missing(env::ID))?;
        if !chaincode_id
            .split_once(':')
            .is_some_and(|(l, h)| !l.is_empty() && !h.is_empty())
        {
            return Err(ConfigError::PackageId {
                var: env::ID,
                value: chaincode_id,
            });
        }
        let read = |name: &'static str, path: String| {
            std::fs::read(&path).map_err(|source| ConfigError::Read {
                var: name,
                path: path.into(),
                source,
            })
        };
        let tls = match (var(env::TLS_CERT), var(env::TLS_KEY)) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::HalfTls {
                    set: env::TLS_CERT,
                    missing: env::TLS_KEY,
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::HalfTls {
                    set: env::TLS_KEY,
                    missing: env::TLS_CERT,
                });
            }
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert_pem: read(env::TLS_CERT, cert)?,
                key_pem: read(env::TLS_KEY, key)?,
                client_ca_pem: var(env::CLIENT_CA_CERT)
                    .map(|p| read(env::CLIENT_CA_CERT, p))
                    .transpose()?,
            }),
        };
        Ok(Self {
            address,
            chaincode_id,
            tls,
        })
    }
}

/// The server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The TLS material was refused.
    #[error("TLS configuration rejected: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// Binding or serving failed.
    #[error("serving on {address} failed: {source}")]
    Serve {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

struct ChaincodeService {
    chaincode_id: Arc<str>,
    contract: Arc<dyn Contract>,
    shutdown: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl Chaincode for ChaincodeService {
    type ConnectStream = ReceiverStream<Result<ChaincodeMessage, Status>>;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request.remote_addr();
        tracing::info!(?peer, "peer connected");
        let inbound = request.into_inner();
        let (outbound, rx) = mpsc::channel(1024);
        let id = Arc::clone(&self.chaincode_id);
        let contract = Arc::clone(&self.contract);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            match serve_stream(&id, contract, inbound, outbound, shutdown).await {
                Ok(()) => tracing::info!(?peer, "stream closed"),
                Err(error) => tracing::warn!(?peer, %error, "stream ended with an error"),
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Serve `contract` until `shutdown` completes, then drain running transactions (up to 10 s) and
/// close the streams.
pub async fn serve(
    config: ServerConfig,
    contract: Arc<dyn Contract>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = ChaincodeService {
        chaincode_id: config.chaincode_id.as_str().into(),
        contract,
        shutdown: stop_rx.clone(),
    };
    let service = ChaincodeServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut builder = Server::builder().http2_keepalive_interval(None);
    if let Some(tls) = &config.tls {
        let mut tls_config =
            ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
        if let Some(ca) = &tls.client_ca_pem {
            tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls_config).map_err(ServerError::Tls)?;
    }
    let address = config.address;
    tracing::info!(%address, chaincode_id = %config.chaincode_id, tls = config.tls.is_some(),
        client_auth = config.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()), "chaincode server listening");
    let mut stopped = stop_rx;
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining running transactions");
        // Receivers see `true` even after the sender is dropped.
        let _ = stop_tx.send(true);
    };
    let serving = builder
        .add_service(service)
        .serve_with_shutdown(address, signal);
    let deadline = async move {
        if stopped.wait_for(|stop| *stop).await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = serving => {
            result.map_err(|source| ServerError::Serve { address, source })?;
            tracing::info!("server stopped");
            Ok(())
        }
        () = deadline => {
            tracing::warn!("transactions still running after the drain timeout; stopping anyway");
            Ok(())
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The whole `main` of a chaincode-as-a-service binary: logs to stderr (`RUST_LOG` filters,
/// default `info`; colours only on a terminal), reads [`ServerConfig::from_env`], serves
/// `contract` until SIGTERM or Ctrl-C. Returns exit code 0 after a clean shutdown and 1 on a
/// configuration or serving error, which is printed with `program` as its prefix.
///
/// ```no_run
/// # use fabric_shim::Router;
/// fn main() -> std::process::ExitCode {
///     fabric_shim::server::main("my-chaincode", Router::new())
/// }
/// ```
#[cfg(feature = "main")]
pub fn main(program: &str, contract: impl Contract) -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let failed = |error: &dyn std::fmt::Display| {
        tracing::error!("{error}");
        eprintln!("{program}: {error}");
        std::process::ExitCode::FAILURE
    };
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            return failed(&format_args!(
                "invalid chaincode server configuration: {error}"
            ));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return failed(&format_args!("cannot start the async runtime: {error}")),
    };
    match runtime.block_on(serve(config, Arc::new(contract), shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => failed(&format_args!("chaincode server failed: {error}")),
    }
}
