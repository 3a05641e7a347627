"""Encrypted tokens (JWE) made and read by a Python implementation (joserfc 1.8): the JWT guide's
A256KW / A256GCM claims set under a 32-byte shared secret, and nested sign-then-encrypt tokens
(an ES256 JWS inside RSA-OAEP-256 or ECDH-ES+A256KW with A256GCM, cty JWT).

    python jwe.py <config.json> encrypt            prints one JSON line per kind: {"kind", "token"}
    python jwe.py <config.json> decrypt < lines    reads {"kind", "token"} lines, prints {"kind", "claims"}

The config is tests/interop/jwe.mjs's (PEM strings; the secret as text, its UTF-8 bytes the key).
"""

import json
import sys
import time

from joserfc import jwe, jwt
from joserfc.jwe import JWERegistry
from joserfc.jwk import ECKey, OctKey, RSAKey

config_path, mode = sys.argv[1], sys.argv[2]
with open(config_path, encoding="utf-8") as file:
    config = json.load(file)
secret = OctKey.import_key(config["secret"].encode())
issuer, audience = config["issuer"], config["audience"]
nested = {
    "RSA-OAEP-256": (RSAKey, config["rsaPublic"], config["rsaPrivate"]),
    "ECDH-ES+A256KW": (ECKey, config["ecPublic"], config["ecPrivate"]),
}
SHARED = ["A256KW", "A256GCM"]


def claims(sub):
    now = int(time.time())
    return {"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + 7200}


def check(token_claims):
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer}, aud={"essential": True, "value": audience}
    )
    registry.validate(token_claims)
    return token_claims


if mode == "encrypt":
    # A JWE registry makes jwt.encode encrypt (joserfc's EncryptJWT).
    registry = JWERegistry(algorithms=SHARED)
    token = jwt.encode({"alg": "A256KW", "enc": "A256GCM"}, claims("alice"), secret, registry=registry)
    print(json.dumps({"kind": "A256KW", "token": token}))
    signing = ECKey.import_key(config["signingPrivate"])
    for alg, (key_type, public, _) in nested.items():
        inner = jwt.encode({"alg": "ES256", "typ": "JWT"}, claims("bob"), signing, algorithms=["ES256"])
        protected = {"alg": alg, "enc": "A256GCM", "cty": "JWT"}
        token = jwe.encrypt_compact(protected, inner, key_type.import_key(public), algorithms=[alg, "A256GCM"])
        print(json.dumps({"kind": alg, "token": token}))
elif mode == "decrypt":
    verify_key = ECKey.import_key(config["signingPublic"])
    for line in filter(None, sys.stdin.read().split("\n")):
        item = json.loads(line)
        kind, token = item["kind"], item["token"]
        if kind == "A256KW":
            decoded = jwt.decode(token, secret, registry=JWERegistry(algorithms=SHARED))
        else:
            key_type, _, private = nested[kind]
            opened = jwe.decrypt_compact(token, key_type.import_key(private), algorithms=[kind, "A256GCM"])
            if opened.protected.get("cty") != "JWT":
                raise ValueError(f"cty {opened.protected.get('cty')}")
            decoded = jwt.decode(opened.plaintext, verify_key, algorithms=["ES256"])
        print(json.dumps({"kind": kind, "claims": check(decoded.claims)}))
else:
    raise SystemExit(f"unknown mode {mode}")
