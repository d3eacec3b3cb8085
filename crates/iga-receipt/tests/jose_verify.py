"""Verify compact JWS receipts with an independent JOSE library (jwcrypto), using
nothing but a JWKS document.

usage: python jose_verify.py JWKS_FILE TOKENS_FILE
TOKENS_FILE holds one compact JWS per line. For each token one JSON line is printed:
{"ok": true, "kid": ..., "alg": ..., "payload": "<payload text>"} or
{"ok": false, "error": "..."}.
"""
import json
import sys

from jwcrypto import jwk, jws


def main() -> int:
    jwks_path, tokens_path = sys.argv[1], sys.argv[2]
    with open(jwks_path, encoding="utf-8") as f:
        keyset = jwk.JWKSet.from_json(f.read())
    with open(tokens_path, encoding="utf-8") as f:
        tokens = [line.strip() for line in f if line.strip()]
    for token in tokens:
        try:
            obj = jws.JWS()
            obj.deserialize(token)
            header = obj.jose_header
            kid = header.get("kid")
            key = keyset.get_key(kid) if kid else None
            if key is None:
                raise ValueError(f"kid {kid!r} not in JWKS")
            obj.allowed_algs = ["EdDSA", "ES256"]
            obj.verify(key)
            print(json.dumps({"ok": True, "kid": kid, "alg": header.get("alg"),
                              "payload": obj.payload.decode("utf-8")}))
        except Exception as e:  # report every failure kind as data
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
