//! Signing keys, public keys, JWK/JWKS and the key ring used for verification.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::b64::{b64url_decode, b64url_encode};
use crate::{JwsError, ReceiptError};

/// A JWS signature algorithm this crate signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// `EdDSA` with an Ed25519 key (RFC 8037) — the default, most widely supported name.
    EdDSA,
    /// `Ed25519`, the fully specified name from RFC 9864 for the same signature.
    Ed25519,
    /// `ES256`: ECDSA P-256 + SHA-256 with the fixed 64-byte `r‖s` signature (RFC 7518 §3.4).
    ES256,
}

impl Algorithm {
    /// The JOSE `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::ES256 => "ES256",
        }
    }

    /// Parse a JOSE `alg` value (`none` and anything else unsupported give `None`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Self::EdDSA),
            "Ed25519" => Some(Self::Ed25519),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }

    /// The key type the algorithm needs.
    pub fn key_type(self) -> KeyType {
        match self {
            Self::EdDSA | Self::Ed25519 => KeyType::Ed25519,
            Self::ES256 => KeyType::P256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// Ed25519 (JWK `kty` `OKP`, `crv` `Ed25519`).
    Ed25519,
    /// NIST P-256 (JWK `kty` `EC`, `crv` `P-256`).
    P256,
}

impl KeyType {
    /// A short name for messages (`Ed25519`, `P-256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::P256 => "P-256",
        }
    }

    /// Whether a key of this type may verify signatures made with `alg` (algorithm pinning).
    pub fn accepts(self, alg: Algorithm) -> bool {
        alg.key_type() == self
    }
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

/// A private signing key with its public half, algorithm and RFC 7638 `kid`.
///
/// `Debug` shows the algorithm and kid only; the private key never leaves this value
/// except through [`SigningKey::to_pkcs8_pem`], which exists to persist a generated key.
pub struct SigningKey {
    pair: Pair,
    alg: Algorithm,
    public: VerifyingKey,
    pkcs8: Option<Vec<u8>>,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg.as_str())
            .field("kid", &self.public.kid)
            .field("private", &"[redacted]")
            .finish()
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
/// DER prefix of a PKCS#8 v1 Ed25519 private key (RFC 8410); the 32-byte seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl SigningKey {
    /// Generate a fresh key for `alg` (the PKCS#8 document is kept so it can be saved
    /// with [`SigningKey::to_pkcs8_pem`]).
    pub fn generate(alg: Algorithm) -> Result<Self, ReceiptError> {
        let rng = SystemRandom::new();
        let doc = match alg.key_type() {
            KeyType::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            KeyType::P256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng),
        }
        .map_err(|_| ReceiptError::Key {
            context: format!("generate {alg}"),
            reason: "the system random number generator failed".into(),
        })?;
        Self::from_pkcs8_der_ctx(doc.as_ref(), "generated")?.with_algorithm(alg)
    }

    /// Load an unencrypted PKCS#8 private key (Ed25519 or P-256) in DER form.
    /// Ed25519 keys sign with `EdDSA`, P-256 keys with `ES256`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ReceiptError> {
        Self::from_pkcs8_der_ctx(der, "PKCS#8 DER")
    }

    /// Load an unencrypted PKCS#8 private key in PEM form (`BEGIN PRIVATE KEY`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, ReceiptError> {
        Self::from_pkcs8_pem_ctx(pem, "PKCS#8 PEM")
    }

    /// Load a PKCS#8 key file, PEM or DER (detected from the content).
    pub fn load_pkcs8_file(path: impl AsRef<Path>) -> Result<Self, ReceiptError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ReceiptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let ctx = format!("file {}", path.display());
        if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            let text = String::from_utf8(bytes).map_err(|_| ReceiptError::Key {
                context: ctx.clone(),
                reason: "PEM file is not valid UTF-8".into(),
            })?;
            Self::from_pkcs8_pem_ctx(&text, &ctx)
        } else {
            Self::from_pkcs8_der_ctx(&bytes, &ctx)
        }
    }

    /// Build an Ed25519 key from its 32-byte seed (the JWK `d`), checking it against the
    /// public key `x` when given.
    pub fn from_ed25519_seed(seed: &[u8], public: Option<&[u8]>) -> Result<Self, ReceiptError> {
        let ctx = "Ed25519 seed";
        let pair = match public {
            Some(x) => Ed25519KeyPair::from_seed_and_public_key(seed, x),
            None => Ed25519KeyPair::from_seed_unchecked(seed),
        }
        .map_err(|e| key_err(ctx, format!("rejected: {e}")))?;
        let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let public = VerifyingKey::from_parts(KeyType::Ed25519, pair.public_key().as_ref())?;
        Ok(Self {
            pair: Pair::Ed(pair),
            alg: Algorithm::EdDSA,
            public,
            pkcs8: Some(der),
            rng: SystemRandom::new(),
        })
    }

    /// Build a key from a private JWK (`OKP`/`Ed25519` with `d` and `x`, or `EC`/`P-256`
    /// with `d`, `x`, `y`), as published in the RFC test vectors.
    pub fn from_private_jwk(jwk: &serde_json::Value) -> Result<Self, ReceiptError> {
        let ctx = "private JWK";
        let field = |name: &str| -> Result<Vec<u8>, ReceiptError> {
            let s = jwk
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| key_err(ctx, format!("member `{name}` missing or not a string")))?;
            b64url_decode(s).map_err(|e| key_err(ctx, format!("member `{name}`: {e}")))
        };
        let kty = jwk.get("kty").and_then(|v| v.as_str()).unwrap_or("");
        let crv = jwk.get("crv").and_then(|v| v.as_str()).unwrap_or("");
        match (kty, crv) {
            ("OKP", "Ed25519") => Self::from_ed25519_seed(&field("d")?, Some(&field("x")?)),
            ("EC", "P-256") => {
                let d = field("d")?;
                let mut point = vec![0x04];
                point.extend(field("x")?);
                point.extend(field("y")?);
                let rng = SystemRandom::new();
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &d,
                    &point,
                    &rng,
                )
                .map_err(|e| key_err(ctx, format!("rejected: {e}")))?;
                let public = VerifyingKey::from_parts(KeyType::P256, pair.public_key().as_ref())?;
                Ok(Self {
                    pair: Pair::Ec(pair),
                    alg: Algorithm::ES256,
                    public,
                    pkcs8: None,
                    rng,
                })
            }
            _ => Err(key_err(
                ctx,
                format!(
                    "unsupported key kty `{kty}` crv `{crv}` (expected OKP/Ed25519 or EC/P-256)"
                ),
            )),
        }
    }

    /// Choose the `alg` to emit (e.g. `Ed25519` instead of the default `EdDSA`); it
    /// must fit the key type.
    pub fn with_algorithm(mut self, alg: Algorithm) -> Result<Self, ReceiptError> {
        if !self.public.key_type.accepts(alg) {
            return Err(key_err(
                &format!("kid {}", self.public.kid),
                format!(
                    "a {} key cannot sign with {alg}",
                    self.public.key_type.as_str()
                ),
            ));
        }
        self.alg = alg;
        self.public.alg = alg;
        Ok(self)
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id: the RFC 7638 SHA-256 JWK thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public half, for a [`KeyRing`] or a JWKS.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Sign `message`; Ed25519 signatures are 64 bytes and deterministic, ES256
    /// signatures are 64 bytes `r‖s` and randomized.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ReceiptError> {
        match &self.pair {
            Pair::Ed(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Ec(p) => p
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| key_err(&format!("kid {}", self.public.kid), "ES256 signing failed")),
        }
    }

    /// The private key as PKCS#8 PEM, to persist a generated key. **Secret**: write it
    /// to a file only the service can read. `None` for P-256 keys built from a JWK.
    pub fn to_pkcs8_pem(&self) -> Option<String> {
        let der = self.pkcs8.as_ref()?;
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        let mut pem = String::from(PEM_BEGIN);
        pem.push('\n');
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        Some(pem)
    }

    fn from_pkcs8_pem_ctx(pem: &str, ctx: &str) -> Result<Self, ReceiptError> {
        if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Err(key_err(
                ctx,
                "encrypted PKCS#8 is not supported; decrypt it with `openssl pkcs8 -nocrypt`",
            ));
        }
        if pem.contains("BEGIN EC PRIVATE KEY") {
            return Err(key_err(
                ctx,
                "this is a SEC1 `EC PRIVATE KEY`; convert it with `openssl pkcs8 -topk8 -nocrypt`",
            ));
        }
        let start = pem
            .find(PEM_BEGIN)
            .ok_or_else(|| key_err(ctx, format!("no `{PEM_BEGIN}` line")))?;
        let body = &pem[start + PEM_BEGIN.len()..];
        let end = body
            .find(PEM_END)
            .ok_or_else(|| key_err(ctx, format!("no `{PEM_END}` line")))?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .map_err(|e| key_err(ctx, format!("PEM body is not base64: {e}")))?;
        Self::from_pkcs8_der_ctx(&der, ctx)
    }

    fn from_pkcs8_der_ctx(der: &[u8], ctx: &str) -> Result<Self, ReceiptError> {
        let rng = SystemRandom::new();
        let ed_err = match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            Ok(pair) => {
                let public =
                    VerifyingKey::from_parts(KeyType::Ed25519, pair.public_key().as_ref())?;
                return Ok(Self {
                    pair: Pair::Ed(pair),
                    alg: Algorithm::EdDSA,
                    public,
                    pkcs8: Some(der.to_vec()),
                    rng,
                });
            }
            Err(e) => e,
        };
        match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            Ok(pair) => {
                let public = VerifyingKey::from_parts(KeyType::P256, pair.public_key().as_ref())?;
                Ok(Self {
                    pair: Pair::Ec(pair),
                    alg: Algorithm::ES256,
                    public,
                    pkcs8: Some(der.to_vec()),
                    rng,
                })
            }
            Err(ec_err) => Err(key_err(
                ctx,
                format!(
                    "not an unencrypted PKCS#8 Ed25519 or P-256 private key (as Ed25519: {ed_err}; as P-256: {ec_err})"
                ),
            )),
        }
    }
}

fn key_err(ctx: &str, reason: impl Into<String>) -> ReceiptError {
    ReceiptError::Key {
        context: ctx.to_string(),
        reason: reason.into(),
    }
}

/// A public key that verifies receipts: key type, preferred algorithm, kid and the raw
/// public key (32 bytes for Ed25519, the 65-byte uncompressed point for P-256).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key_type: KeyType,
    alg: Algorithm,
    kid: String,
    public: Vec<u8>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_type", &self.key_type.as_str())
            .field("alg", &self.alg.as_str())
            .field("kid", &self.kid)
            .finish()
    }
}

impl VerifyingKey {
    fn from_parts(key_type: KeyType, public: &[u8]) -> Result<Self, ReceiptError> {
        let alg = match key_type {
            KeyType::Ed25519 => Algorithm::EdDSA,
            KeyType::P256 => Algorithm::ES256,
        };
        let mut k = Self {
            key_type,
            alg,
            kid: String::new(),
            public: public.to_vec(),
        };
        k.kid = k.to_jwk().thumbprint()?;
        Ok(k)
    }

    /// Build from a public JWK (`OKP`/`Ed25519` or `EC`/`P-256`). The kid is always the
    /// RFC 7638 thumbprint; a JWK whose `kid` differs from it is rejected, so a JWKS
    /// cannot smuggle a key under another key's id.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, ReceiptError> {
        let ctx = format!("JWK kid {}", jwk.kid.as_deref().unwrap_or("(none)"));
        let get = |name: &str, v: &Option<String>, len: usize| -> Result<Vec<u8>, ReceiptError> {
            let s = v
                .as_deref()
                .ok_or_else(|| key_err(&ctx, format!("member `{name}` missing")))?;
            let b = b64url_decode(s).map_err(|e| key_err(&ctx, format!("member `{name}`: {e}")))?;
            if b.len() != len {
                return Err(key_err(
                    &ctx,
                    format!("member `{name}` is {} bytes, expected {len}", b.len()),
                ));
            }
            Ok(b)
        };
        let (key_type, public) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("OKP", Some("Ed25519")) => (KeyType::Ed25519, get("x", &jwk.x, 32)?),
            ("EC", Some("P-256")) => {
                let mut p = vec![0x04];
                p.extend(get("x", &jwk.x, 32)?);
                p.extend(get("y", &jwk.y, 32)?);
                (KeyType::P256, p)
            }
            (kty, crv) => {
                return Err(key_err(
                    &ctx,
                    format!(
                        "unsupported kty `{kty}` crv `{}` (expected OKP/Ed25519 or EC/P-256)",
                        crv.unwrap_or("")
                    ),
                ));
            }
        };
        let mut k = Self::from_parts(key_type, &public)?;
        if let Some(alg) = jwk.alg.as_deref() {
            let alg = Algorithm::parse(alg)
                .filter(|a| key_type.accepts(*a))
                .ok_or_else(|| {
                    key_err(
                        &ctx,
                        format!("alg `{alg}` does not fit a {} key", key_type.as_str()),
                    )
                })?;
            k.alg = alg;
        }
        if let Some(kid) = &jwk.kid
            && kid != &k.kid
        {
            return Err(key_err(
                &ctx,
                format!(
                    "kid is not the RFC 7638 thumbprint of the key (expected {})",
                    k.kid
                ),
            ));
        }
        Ok(k)
    }

    /// The kid (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The algorithm published for this key in the JWKS.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK, with `kid`, `alg` and `use: "sig"`.
    pub fn to_jwk(&self) -> Jwk {
        match self.key_type {
            KeyType::Ed25519 => Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                x: Some(b64url_encode(&self.public)),
                y: None,
                n: None,
                e: None,
                kid: (!self.kid.is_empty()).then(|| self.kid.clone()),
                alg: Some(self.alg.as_str().into()),
                use_: Some("sig".into()),
            },
            KeyType::P256 => Jwk {
                kty: "EC".into(),
                crv: Some("P-256".into()),
                x: Some(b64url_encode(&self.public[1..33])),
                y: Some(b64url_encode(&self.public[33..65])),
                n: None,
                e: None,
                kid: (!self.kid.is_empty()).then(|| self.kid.clone()),
                alg: Some(self.alg.as_str().into()),
                use_: Some("sig".into()),
            },
        }
    }

    /// Verify `signature` over `message` made with `alg`; the algorithm must fit the
    /// key type (never chosen by the token alone).
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), JwsError> {
        if !self.key_type.accepts(alg) {
            return Err(JwsError::AlgorithmMismatch {
                kid: self.kid.clone(),
                alg: alg.as_str().into(),
                key_type: self.key_type.as_str(),
            });
        }
        let algo: &'static dyn signature::VerificationAlgorithm = match self.key_type {
            KeyType::Ed25519 => &signature::ED25519,
            KeyType::P256 => {
                if signature.len() != 64 {
                    return Err(JwsError::BadSignature {
                        kid: self.kid.clone(),
                    });
                }
                &ECDSA_P256_SHA256_FIXED
            }
        };
        UnparsedPublicKey::new(algo, &self.public)
            .verify(message, signature)
            .map_err(|_| JwsError::BadSignature {
                kid: self.kid.clone(),
            })
    }
}

/// A JSON Web Key (public members only; private members are never read into this type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Jwk {
    /// Key type: `OKP`, `EC`, `RSA`.
    pub kty: String,
    /// Curve (`Ed25519`, `P-256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Public key (OKP) or x coordinate (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// y coordinate (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus (thumbprints only; RSA keys are not used for receipts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent (thumbprints only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use (`sig`).
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    /// The RFC 7638 SHA-256 thumbprint (base64url, 43 characters): SHA-256 over the
    /// required members only, sorted, without whitespace.
    pub fn thumbprint(&self) -> Result<String, ReceiptError> {
        let ctx = "JWK thumbprint";
        let req = |name: &str, v: &Option<String>| {
            v.clone().ok_or_else(|| {
                key_err(
                    ctx,
                    format!("{} key lacks required member `{name}`", self.kty),
                )
            })
        };
        let mut m: BTreeMap<&str, String> = BTreeMap::new();
        m.insert("kty", self.kty.clone());
        match self.kty.as_str() {
            "OKP" => {
                m.insert("crv", req("crv", &self.crv)?);
                m.insert("x", req("x", &self.x)?);
            }
            "EC" => {
                m.insert("crv", req("crv", &self.crv)?);
                m.insert("x", req("x", &self.x)?);
                m.insert("y", req("y", &self.y)?);
            }
            "RSA" => {
                m.insert("e", req("e", &self.e)?);
                m.insert("n", req("n", &self.n)?);
            }
            other => return Err(key_err(ctx, format!("unsupported kty `{other}`"))),
        }
        let json = crate::canonical::to_canonical_json(&m)?;
        Ok(b64url_encode(Sha256::digest(&json)))
    }
}

/// A JWK Set document (`{"keys":[...]}`), the format auditors and JOSE libraries load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// The public keys receipts are verified with, by kid. Keep every key that ever signed
/// (rotation adds keys, never removes them) so old receipts keep verifying.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a public key (replacing one with the same kid, which is the same key).
    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key.kid.clone(), key);
    }

    /// Builder form of [`KeyRing::insert`].
    pub fn with(mut self, key: VerifyingKey) -> Self {
        self.insert(key);
        self
    }

    /// The key with this kid.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The kids, sorted.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Load every key of a JWKS; an unsupported or inconsistent key is an error naming
    /// its index.
    pub fn from_jwks(jwks: &Jwks) -> Result<Self, ReceiptError> {
        let mut ring = Self::new();
        for (i, jwk) in jwks.keys.iter().enumerate() {
            let k = VerifyingKey::from_jwk(jwk).map_err(|e| ReceiptError::Key {
                context: format!("JWKS keys[{i}]"),
                reason: e.to_string(),
            })?;
            ring.insert(k);
        }
        Ok(ring)
    }

    /// Parse a JWKS JSON document.
    pub fn from_jwks_json(json: &str) -> Result<Self, ReceiptError> {
        let jwks: Jwks = serde_json::from_str(json).map_err(|e| ReceiptError::Key {
            context: "JWKS document".into(),
            reason: e.to_string(),
        })?;
        Self::from_jwks(&jwks)
    }

    /// Export all public keys as a JWKS.
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.values().map(VerifyingKey::to_jwk).collect(),
        }
    }

    /// Export all public keys as a pretty-printed JWKS JSON document.
    pub fn to_jwks_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_jwks()).unwrap_or_else(|_| "{\"keys\":[]}".into())
    }
}
