//! A test PKI made with rcgen: a CA, and certificates for a server or a client, signed by the CA
//! or self-signed, with their private keys (PEM) and DER.

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

/// A certificate and its private key, PEM, and the certificate's DER.
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Identity {
    /// The identity a reqwest client presents.
    pub fn reqwest(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.key_pem, self.cert_pem).as_bytes()).unwrap()
    }
}

/// A self-signed CA.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `common_name`.
    pub fn new(common_name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { pem, issuer: Issuer::new(params, key) }
    }
}

/// A certificate for `names` (the first is also its common name) for `usage`, signed by `ca`, or
/// self-signed without one.
pub fn leaf(names: &[&str], usage: ExtendedKeyUsagePurpose, ca: Option<&TestCa>) -> Identity {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    params.extended_key_usages.push(usage);
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Identity { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
}
