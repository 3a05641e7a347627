"""RFC 9421 interop, "they sign, we verify": requests signed by the Python
`http-message-signatures` library (pyauth), sent to a server of ours over loopback.

Usage: httpsig_sign.py URL TOKEN OTHER_TOKEN, with the private keys (PKCS#8 PEM) in the environment
variables PY_P256_KEY and PY_ED25519_KEY (key ids `py-p256` and `py-ed25519`).

Prints one JSON line per case: {"case", "expect", "status", "body"}. The Rust test
(tests/message_signature_verify.rs) checks each status against the expected one.
"""

import json
import os
import sys
import urllib.error
import urllib.request
import uuid

from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms


class Request:
    """The message interface the library reads and writes: method, url, headers."""

    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        self.headers = dict(headers)


def send(method, url, headers, body=None):
    request = urllib.request.Request(url, data=body, method=method)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def main():
    url, token, other_token = sys.argv[1], sys.argv[2], sys.argv[3]
    keys = {
        "py-p256": (algorithms.ECDSA_P256_SHA256, os.environ["PY_P256_KEY"].encode()),
        "py-ed25519": (algorithms.ED25519, os.environ["PY_ED25519_KEY"].encode()),
    }
    covered = ("@method", "@target-uri", "authorization")
    for key_id, (algorithm, pem) in keys.items():
        signer = HTTPMessageSigner(
            signature_algorithm=algorithm,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: pem}),
        )
        alg = algorithm.algorithm_id

        def signed(method, body=None, target=url, extra=()):
            message = Request(method, target, {"Authorization": f"Bearer {token}"})
            signer.sign(
                message,
                key_id=key_id,
                nonce=uuid.uuid4().hex,
                covered_component_ids=covered + extra,
                body=body,
            )
            return message.headers

        def case(name, expect, method, target, headers, body=None):
            status, text = send(method, target, headers, body)
            print(json.dumps({"case": f"{alg}: {name}", "expect": expect, "status": status, "body": text}))

        headers = signed("GET")
        case("signed GET", 200, "GET", url, headers)
        case("replayed", 401, "GET", url, headers)
        case("another method", 401, "DELETE", url, signed("GET"))
        case("another path", 401, "GET", url + "?id=2", signed("GET"))
        altered = signed("GET")
        altered["Authorization"] = f"Bearer {other_token}"
        case("another token", 401, "GET", url, altered)

        # RFC 9421 §2.2.8: each parameter decoded and re-encoded the WHATWG way (`+` and `~`,
        # a byte that is not UTF-8 read as U+FFFD).
        query = url + "?q=a+b%21~&x=%FF"
        params = ('"@query-param";name="q"', '"@query-param";name="x"')
        case("query parameters", 200, "GET", query, signed("GET", target=query, extra=params))
        altered = url + "?q=a+b%21~&x=%FE"
        case("another query parameter", 401, "GET", altered, signed("GET", target=query, extra=params))

        body = b'{"amount": 10}'
        case("signed POST", 200, "POST", url, signed("POST", body), body)
        case("another body", 400, "POST", url, signed("POST", body), b'{"amount": 99}')
        without_digest = {name: value for name, value in signed("POST", body).items() if name.lower() != "content-digest"}
        case("digest removed", 401, "POST", url, without_digest, body)


if __name__ == "__main__":
    main()
