"""Messages signed by tower-jwt-guard (RFC 9421), verified by a Python implementation: the PyPI
`http-message-signatures` package (pyauth, 3.0.0, RFC 9421 final), with the Content-Digest
(RFC 9530) checked against the body.

    python httpsig_sign_check.py < cases

Reads one JSON object a line:
    {"name", "kind": "request" | "response", "jwk": the signer's public JWK (OKP Ed25519 or EC
     P-256), "require": [components the signature must cover], "body": text,
     "method", "url", "headers": [[name, value], ...]                  (a request), or
     "status", "headers", "request": {"method", "url", "headers"}       (a response)}
and prints one JSON line per case: {"name", "verified": bool, "covered": [...], "error"}.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, InvalidSignature
from http_message_signatures.algorithms import ECDSA_P256_SHA256, ED25519


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key(jwk):
    if jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519":
        return ED25519, ed25519.Ed25519PublicKey.from_public_bytes(b64url(jwk["x"]))
    if jwk["kty"] == "EC" and jwk["crv"] == "P-256":
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url(jwk["x"]), "big"), int.from_bytes(b64url(jwk["y"]), "big"), ec.SECP256R1()
        )
        return ECDSA_P256_SHA256, numbers.public_key()
    raise ValueError("unsupported JWK")


class Headers:
    """Field lines in order (repeated names kept), as the package reads them."""

    def __init__(self, pairs):
        self.pairs = [(name, value) for name, value in pairs]

    def items(self):
        return list(self.pairs)

    def __iter__(self):
        return iter(dict.fromkeys(name for name, _ in self.pairs))

    def __contains__(self, name):
        return any(field.lower() == name.lower() for field, _ in self.pairs)


class Request:
    def __init__(self, data):
        self.method = data["method"]
        self.url = data["url"]
        self.headers = Headers(data["headers"])


class Response:
    def __init__(self, data):
        self.status_code = data["status"]
        self.headers = Headers(data["headers"])
        self.request = Request(data["request"])


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, key):
        self.key = key

    def resolve_public_key(self, key_id):
        return self.key


for line in sys.stdin:
    if not line.strip():
        continue
    case = json.loads(line)
    algorithm, key = public_key(case["jwk"])
    message = Request(case) if case["kind"] == "request" else Response(case)
    verifier = HTTPMessageVerifier(signature_algorithm=algorithm, key_resolver=Keys(key))
    try:
        results = verifier.verify(
            message,
            require_components=case.get("require", []),
            body=case.get("body", "").encode(),
        )
        covered = [name for result in results for name in result.covered_components]
        print(json.dumps({"name": case["name"], "verified": True, "covered": covered}), flush=True)
    except (InvalidSignature, Exception) as error:  # noqa: BLE001 - every failure is a refusal here
        print(json.dumps({"name": case["name"], "verified": False, "error": str(error)}), flush=True)
