//! The CCaaS server over real sockets: TLS with ALPN h2 (tonic's client insists on it), mandatory
//! client certificates when a client CA is configured, plaintext, shutdown; and the typed
//! configuration's errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fabric_protos::protos::chaincode_client::ChaincodeClient;
use fabric_protos::protos::chaincode_message::Type;
use fabric_protos::protos::{ChaincodeId, ChaincodeMessage};
use fabric_shim::Router;
use fabric_shim::server::{ConfigError, ServerConfig, TlsConfig, serve};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const CA: &[u8] = include_bytes!("data/ca.crt");
const SERVER_CERT: &[u8] = include_bytes!("data/server.crt");
const SERVER_KEY: &[u8] = include_bytes!("data/server.key");
const CLIENT_CERT: &[u8] = include_bytes!("data/client.crt");
const CLIENT_KEY: &[u8] = include_bytes!("data/client.key");

struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), fabric_shim::server::ServerError>>,
}

async fn start(tls: Option<TlsConfig>) -> Running {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = ServerConfig {
        address,
        chaincode_id: "cc:1234".into(),
        tls,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, Arc::new(Router::new()), async {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Running {
        address,
        stop,
        task,
    }
}

fn tls(client_auth: bool) -> Option<TlsConfig> {
    Some(TlsConfig {
        cert_pem: SERVER_CERT.to_vec(),
        key_pem: SERVER_KEY.to_vec(),
        client_ca_pem: client_auth.then(|| CA.to_vec()),
    })
}

async fn channel(
    address: SocketAddr,
    tls: Option<bool>,
) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}")).unwrap();
    if let Some(with_cert) = tls {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(CA))
            .domain_name("localhost");
        if with_cert {
            config = config.identity(Identity::from_pem(CLIENT_CERT, CLIENT_KEY));
        }
        endpoint = endpoint.tls_config(config).unwrap();
    }
    endpoint.connect().await
}

/// Open Connect and return the chaincode's first message (REGISTER), or the error.
async fn first_message(address: SocketAddr, tls: Option<bool>) -> Result<ChaincodeMessage, String> {
    let channel = channel(address, tls)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (_to_chaincode, rx) = mpsc::channel::<ChaincodeMessage>(8);
    let response = ChaincodeClient::new(channel)
        .connect(ReceiverStream::new(rx))
        .await
        .map_err(|e| format!("rpc: {e}"))?;
    let mut stream = response.into_inner();
    match stream.message().await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err("stream ended".into()),
        Err(e) => Err(format!("stream: {e}")),
    }
}

fn assert_register(m: &ChaincodeMessage) {
    assert_eq!(m.r#type, Type::Register as i32);
    assert_eq!(
        ChaincodeId::decode(m.payload.as_slice()).unwrap().name,
        "cc:1234"
    );
}

#[tokio::test]
async fn plaintext_server_registers_first() {
    let s = start(None).await;
    assert_register(&first_message(s.address, None).await.unwrap());
    s.stop.send(()).unwrap();
    s.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn tls_server_negotiates_h2_and_registers() {
    let s = start(tls(false)).await;
    assert_register(&first_message(s.address, Some(false)).await.unwrap());
    // A plaintext client cannot talk to the TLS server.
    assert!(first_message(s.address, None).await.is_err());
}

#[tokio::test]
async fn client_auth_requires_a_certificate_from_the_client_ca() {
    let s = start(tls(true)).await;
    assert_register(&first_message(s.address, Some(true)).await.unwrap());
    assert!(
        first_message(s.address, Some(false)).await.is_err(),
        "no client certificate must be refused"
    );
}

#[tokio::test]
async fn shutdown_closes_open_streams_and_returns() {
    let s = start(None).await;
    let channel = channel(s.address, None).await.unwrap();
    let (_to_chaincode, rx) = mpsc::channel::<ChaincodeMessage>(8);
    let mut stream = ChaincodeClient::new(channel)
        .connect(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_register(&stream.message().await.unwrap().unwrap());
    s.stop.send(()).unwrap();
    // No transaction is running, so the stream drains at once and the server stops.
    assert!(matches!(stream.message().await, Ok(None) | Err(_)));
    tokio::time::timeout(Duration::from_secs(30), s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

fn vars<'a>(pairs: &'a [(&'static str, &'a str)]) -> impl Fn(&'static str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn config_errors_name_the_variable() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let cert = format!("{dir}/tests/data/server.crt");
    let key = format!("{dir}/tests/data/server.key");
    let ok = ServerConfig::from_vars(vars(&[
        ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:9999"),
        ("CHAINCODE_ID", "cc_1:abcd"),
        ("CHAINCODE_TLS_CERT", &cert),
        ("CHAINCODE_TLS_KEY", &key),
    ]))
    .unwrap();
    assert_eq!(ok.address.port(), 9999);
    assert!(
        ok.tls
            .as_ref()
            .is_some_and(|t| t.client_ca_pem.is_none() && t.cert_pem == SERVER_CERT)
    );

    let e = ServerConfig::from_vars(vars(&[("CHAINCODE_ID", "a:b")])).unwrap_err();
    assert!(matches!(
        e,
        ConfigError::Missing("CHAINCODE_SERVER_ADDRESS")
    ));
    let e = ServerConfig::from_vars(vars(&[
        ("CHAINCODE_SERVER_ADDRESS", "nowhere"),
        ("CHAINCODE_ID", "a:b"),
    ]))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("CHAINCODE_SERVER_ADDRESS=\"nowhere\""),
        "{e}"
    );
    let e = ServerConfig::from_vars(vars(&[
        ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:1"),
        ("CHAINCODE_ID", "nolabel"),
    ]))
    .unwrap_err();
    assert!(matches!(e, ConfigError::PackageId { .. }));
    let e = ServerConfig::from_vars(vars(&[
        ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:1"),
        ("CHAINCODE_ID", "a:b"),
        ("CHAINCODE_TLS_CERT", &cert),
    ]))
    .unwrap_err();
    assert!(matches!(
        e,
        ConfigError::HalfTls {
            missing: "CHAINCODE_TLS_KEY",
            ..
        }
    ));
    let e = ServerConfig::from_vars(vars(&[
        ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:1"),
        ("CHAINCODE_ID", "a:b"),
        ("CHAINCODE_TLS_CERT", "/nonexistent/cert.pem"),
        ("CHAINCODE_TLS_KEY", &key),
    ]))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("CHAINCODE_TLS_CERT file /nonexistent/cert.pem"),
        "{e}"
    );
}
