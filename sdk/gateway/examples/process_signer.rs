//! A [`Signer`] whose key lives outside this process: each digest is handed to a separate
//! program, here `openssl pkeyutl -sign`, which stands for an HSM tool, a PKCS#11 wrapper or a
//! signing service's CLI. The client never sees the key.
//!
//! ```sh
//! cargo run -p fabric-gateway-client --example process_signer -- KEY.pem [MESSAGE]
//! ```
//! signs MESSAGE's SHA-256 digest through openssl and checks the signature with the public key.
//! `tests/mock_gateway.rs` runs a whole transaction through this signer against the mock gateway.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use fabric_gateway_client::{Digest32, SignError, Signer};
use p256::ecdsa::Signature;

/// Signs by running `openssl pkeyutl -sign -inkey KEY` with the digest on stdin. openssl
/// treats its input as the already-hashed message for EC keys and writes a DER ECDSA
/// signature, whose S it does not normalize: this signer lowers S (s → n − s, an equally valid
/// signature) because Fabric peers refuse high-S signatures.
#[derive(Debug, Clone)]
pub struct ProcessSigner {
    program: PathBuf,
    key: PathBuf,
}

impl ProcessSigner {
    /// Signs with `openssl` from `PATH` and the PEM private key at `key`.
    pub fn openssl(key: impl Into<PathBuf>) -> Self {
        Self {
            program: PathBuf::from("openssl"),
            key: key.into(),
        }
    }
}

impl Signer for ProcessSigner {
    fn sign(&self, digest: &Digest32) -> Result<Vec<u8>, SignError> {
        let mut child = Command::new(&self.program)
            .arg("pkeyutl")
            .arg("-sign")
            .arg("-inkey")
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SignError(format!("cannot run {}: {e}", self.program.display())))?;
        child
            .stdin
            .take()
            .ok_or_else(|| SignError("no stdin".into()))?
            .write_all(digest)
            .map_err(|e| SignError(format!("writing the digest: {e}")))?;
        let output = child
            .wait_with_output()
            .map_err(|e| SignError(format!("waiting for the signer: {e}")))?;
        if !output.status.success() {
            return Err(SignError(format!(
                "the signer exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let signature = Signature::from_der(&output.stdout)
            .map_err(|_| SignError("the signer's output is not a DER ECDSA signature".into()))?;
        let signature = signature.normalize_s().unwrap_or(signature);
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

#[allow(dead_code)] // `tests/mock_gateway.rs` includes this file for `ProcessSigner` only.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    use p256::pkcs8::DecodePrivateKey;

    let mut args = std::env::args().skip(1);
    let key = args
        .next()
        .ok_or("usage: process_signer KEY.pem [MESSAGE]")?;
    let message = args.next().unwrap_or_else(|| "hello, Fabric".into());
    let digest = fabric_gateway_client::sha256(message.as_bytes());
    let der = ProcessSigner::openssl(&key).sign(&digest)?;
    let public = *SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&key)?)?.verifying_key();
    public.verify_prehash(&digest, &Signature::from_der(&der)?)?;
    println!("openssl signed {} bytes; the signature verifies", der.len());
    Ok(())
}
