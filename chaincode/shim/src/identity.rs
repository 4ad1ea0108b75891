//! The transaction creator: MSP id, X.509 certificate, subject/issuer, NodeOU role and Fabric CA
//! attributes — what Fabric's Go `cid` package offers.

use std::collections::BTreeMap;

use base64::Engine as _;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// OID of the Fabric CA attribute extension (raw JSON `{"attrs":{...}}`).
const ATTRIBUTES_OID: &str = "1.2.3.4.5.6.7.8.1";

/// A creator identity could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The PEM block holds no certificate that parses as DER X.509.
    #[error("creator certificate does not parse: {0}")]
    Certificate(String),
    /// The Fabric CA attribute extension is not the expected JSON.
    #[error("creator certificate attribute extension is malformed: {0}")]
    Attributes(String),
}

/// A Fabric NodeOU role, read from the certificate's OU values (Fabric's default identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// OU `admin`.
    Admin,
    /// OU `client`.
    Client,
    /// OU `peer`.
    Peer,
    /// OU `orderer`.
    Orderer,
}

impl NodeRole {
    fn from_ou(ou: &str) -> Option<Self> {
        match ou {
            "admin" => Some(Self::Admin),
            "client" => Some(Self::Client),
            "peer" => Some(Self::Peer),
            "orderer" => Some(Self::Orderer),
            _ => None,
        }
    }
}

/// The creator of the transaction being executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    msp_id: String,
    id_bytes: Vec<u8>,
    x509: Option<X509Identity>,
}

impl Creator {
    /// From a `msp.SerializedIdentity`'s parts. `id_bytes` that are not a PEM certificate (e.g.
    /// Idemix) give a creator without X.509 details; a PEM certificate that fails to parse is an
    /// error.
    pub fn from_serialized(msp_id: &str, id_bytes: &[u8]) -> Result<Self, IdentityError> {
        let x509 = match pem_certificate_der(id_bytes) {
            Some(der) => Some(X509Identity::from_der(&der)?),
            None => None,
        };
        Ok(Self {
            msp_id: msp_id.to_owned(),
            id_bytes: id_bytes.to_vec(),
            x509,
        })
    }

    /// A creator with a synthetic X.509 identity (for in-memory tests; no certificate bytes).
    pub fn new(msp_id: &str, identity: X509Identity) -> Self {
        Self {
            msp_id: msp_id.to_owned(),
            id_bytes: Vec::new(),
            x509: Some(identity),
        }
    }

    /// The MSP id (`GetMSPID`).
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The raw `id_bytes` (a PEM certificate for X.509 identities).
    pub fn id_bytes(&self) -> &[u8] {
        &self.id_bytes
    }

    /// The X.509 details, when the identity is an X.509 certificate.
    pub fn x509(&self) -> Option<&X509Identity> {
        self.x509.as_ref()
    }

    /// The NodeOU role, if the identity is X.509 and carries one.
    pub fn role(&self) -> Option<NodeRole> {
        self.x509.as_ref().and_then(X509Identity::role)
    }

    /// `cid.GetID`: `base64("x509::" + subject DN + "::" + issuer DN)`.
    pub fn id(&self) -> Option<String> {
        self.x509.as_ref().map(X509Identity::id)
    }

    /// A Fabric CA attribute (`cid.GetAttributeValue`).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.x509.as_ref().and_then(|x| x.attribute(name))
    }

    /// `cid.HasOUValue`.
    pub fn has_ou(&self, ou: &str) -> bool {
        self.x509
            .as_ref()
            .is_some_and(|x| x.ous.iter().any(|o| o == ou))
    }
}

/// The parts of an X.509 creator certificate chaincode decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Identity {
    der: Vec<u8>,
    subject: String,
    issuer: String,
    ous: Vec<String>,
    attributes: BTreeMap<String, String>,
}

impl X509Identity {
    /// Parse a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let ous = cert
            .subject()
            .iter_organizational_unit()
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect();
        let mut attributes = BTreeMap::new();
        for ext in cert.extensions() {
            if ext.oid.to_id_string() == ATTRIBUTES_OID {
                attributes = parse_attributes(ext.value)?;
            }
        }
        Ok(Self {
            der: der.to_vec(),
            subject: go_dn(cert.subject()),
            issuer: go_dn(cert.issuer()),
            ous,
            attributes,
        })
    }

    /// A synthetic identity for tests: DN strings as Go prints them, OUs, CA attributes.
    pub fn from_parts(
        subject: &str,
        issuer: &str,
        ous: &[&str],
        attributes: &[(&str, &str)],
    ) -> Self {
        Self {
            der: Vec::new(),
            subject: subject.to_owned(),
            issuer: issuer.to_owned(),
            ous: ous.iter().map(|s| (*s).to_owned()).collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The DER certificate (empty for synthetic identities).
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Subject DN in Go's `pkix.Name.String()` form, e.g. `CN=user1,OU=client,O=Org1`.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Issuer DN in Go's form.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// Subject OU values in certificate order.
    pub fn ous(&self) -> &[String] {
        &self.ous
    }
    /// The NodeOU role: the first OU that is `admin`, `client`, `peer` or `orderer`.
    pub fn role(&self) -> Option<NodeRole> {
        self.ous.iter().find_map(|o| NodeRole::from_ou(o))
    }
    /// All Fabric CA attributes.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }
    /// One Fabric CA attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    /// `cid.GetID`.
    pub fn id(&self) -> String {
        let raw = format!("x509::{}::{}", self.subject, self.issuer);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

fn parse_attributes(raw: &[u8]) -> Result<BTreeMap<String, String>, IdentityError> {
    #[derive(serde::Deserialize)]
    struct Attrs {
        attrs: BTreeMap<String, String>,
    }
    serde_json::from_slice::<Attrs>(raw)
        .map(|a| a.attrs)
        .map_err(|e| IdentityError::Attributes(e.to_string()))
}

/// The DER of the first `CERTIFICATE` PEM block, if `bytes` hold one.
fn pem_certificate_der(bytes: &[u8]) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).ok()?;
    (pem.label == "CERTIFICATE").then_some(pem.contents)
}

/// Go's `pkix.Name.String()`: known attributes in the fixed order C, ST, L, STREET, POSTALCODE,
/// O, OU, CN, SERIALNUMBER (multi-valued ones form one `+`-joined RDN), printed in reverse.
fn go_dn(name: &X509Name<'_>) -> String {
    const ORDER: [(&str, &str); 9] = [
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let mut rdns: Vec<String> = Vec::new();
    for (oid, label) in ORDER {
        let mut values: Vec<String> = name
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok().map(escape_dn_value))
            .collect();
        // Go keeps a single value for CN and SERIALNUMBER: the last one seen.
        if matches!(label, "CN" | "SERIALNUMBER") && values.len() > 1 {
            values.drain(..values.len() - 1);
        }
        if !values.is_empty() {
            let rdn: Vec<String> = values.into_iter().map(|v| format!("{label}={v}")).collect();
            rdns.push(rdn.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_go() {
        assert_eq!(escape_dn_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_dn_value(" #x "), "\\ #x\\ ");
        assert_eq!(escape_dn_value("#x"), "\\#x");
    }

    #[test]
    fn synthetic_identity_role_and_attributes() {
        let id = X509Identity::from_parts(
            "CN=Admin@utility,OU=admin,O=Utility",
            "CN=ca.utility,O=Utility",
            &["admin"],
            &[("hf.Type", "admin")],
        );
        let c = Creator::new("UtilityMSP", id);
        assert_eq!(c.role(), Some(NodeRole::Admin));
        assert_eq!(c.attribute("hf.Type"), Some("admin"));
        assert!(c.has_ou("admin"));
        assert!(!c.has_ou("client"));
        let expected = base64::engine::general_purpose::STANDARD
            .encode("x509::CN=Admin@utility,OU=admin,O=Utility::CN=ca.utility,O=Utility");
        assert_eq!(c.id().as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn non_pem_identity_has_no_x509() {
        let c = Creator::from_serialized("IdemixMSP", b"\x01\x02").unwrap();
        assert_eq!(c.msp_id(), "IdemixMSP");
        assert!(c.x509().is_none());
        assert_eq!(c.role(), None);
    }

    #[test]
    fn garbage_certificate_in_pem_is_an_error() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            Creator::from_serialized("X", pem),
            Err(IdentityError::Certificate(_))
        ));
    }
}
