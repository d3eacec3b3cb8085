//! Receipts verified by an independent JOSE implementation (Python `jwcrypto`) using
//! nothing but the exported JWKS.
//!
//! Needs the project venv: run `scripts/install-test-deps.sh` (or set `IGA_PYTHON` to an
//! interpreter with `jwcrypto` installed). A missing interpreter or package fails the
//! test; it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use iga_receipt::*;

fn python() -> PathBuf {
    let p = std::env::var_os("IGA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import jwcrypto"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "independent JOSE verifier unavailable: {} cannot `import jwcrypto`. \
         Fix: run scripts/install-test-deps.sh (creates .venv and installs scripts/python-requirements.txt), \
         or set IGA_PYTHON to a python with jwcrypto installed",
        p.display()
    );
    p
}

fn run_python(jwks: &str, tokens: &[String]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    let tokens_path = dir.path().join("tokens.txt");
    std::fs::write(&jwks_path, jwks).unwrap();
    std::fs::write(&tokens_path, tokens.join("\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jose_verify.py");
    let out = Command::new(python())
        .arg(script)
        .arg(&jwks_path)
        .arg(&tokens_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jwcrypto_verifies_receipts_and_heads_with_only_the_jwks() {
    let old = signer(Algorithm::EdDSA);
    let new = signer(Algorithm::ES256);
    let mut chain = ChainState::genesis(ChainId::new("node-a", "entra").unwrap());
    let mut records = Vec::new();
    for i in 0..8 {
        records.push(append(
            if i < 4 { &old } else { &new },
            &mut chain,
            i,
            "entra",
        ));
    }
    let head = chain.head(&new, t0()).unwrap();
    let jwks = ring_of(&[&old, &new]).to_jwks_json();

    let mut tokens: Vec<String> = records.iter().map(|r| r.jws.clone()).collect();
    tokens.push(head.jws.clone());
    // tampered: one payload character changed
    let mut t = records[2].jws.clone().into_bytes();
    let i = t.iter().position(|&b| b == b'.').unwrap() + 30;
    t[i] = if t[i] == b'A' { b'B' } else { b'A' };
    tokens.push(String::from_utf8(t).unwrap());
    // signed by a key not in the JWKS
    let intruder = signer(Algorithm::EdDSA);
    tokens.push(sign_compact(intruder.key(), Some(RECEIPT_TYP), b"{}").unwrap());

    let results = run_python(&jwks, &tokens);
    assert_eq!(results.len(), tokens.len());
    for (i, r) in records.iter().enumerate() {
        let res = &results[i];
        assert_eq!(
            res["ok"], true,
            "receipt {} rejected by jwcrypto: {res}",
            r.seq
        );
        let expected = String::from_utf8(decode_payload_unverified(&r.jws).unwrap()).unwrap();
        assert_eq!(res["payload"], expected.as_str());
        let want_alg = if i < 4 { "EdDSA" } else { "ES256" };
        assert_eq!(res["alg"], want_alg);
        let want_kid = if i < 4 { old.kid() } else { new.kid() };
        assert_eq!(res["kid"], want_kid);
    }
    assert_eq!(results[8]["ok"], true, "chain head: {}", results[8]);
    assert_eq!(
        results[9]["ok"], false,
        "tampered receipt accepted by jwcrypto"
    );
    assert_eq!(
        results[10]["ok"], false,
        "unknown-key receipt accepted by jwcrypto"
    );
    assert!(
        results[10]["error"]
            .as_str()
            .unwrap()
            .contains("not in JWKS")
    );
}
