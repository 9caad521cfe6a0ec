"""RSA key pairs kept in the state folder, and their public JWKS.

The tool's own key signs client assertions for LTI Advantage services (AGS, NRPS); the local LMS
page has another one to sign its launches. Each is generated on first start, stored with mode
0600, and identified by its RFC 7638 thumbprint as `kid`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class KeyPair:
    private_key: rsa.RSAPrivateKey
    kid: str
    alg: str = "RS256"

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_jwk(self) -> dict:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "alg": self.alg, "use": "sig", "kid": self.kid,
                "n": _b64(numbers.n), "e": _b64(numbers.e)}

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk()]}


def thumbprint(private_key: rsa.RSAPrivateKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of the public key: a stable `kid`."""
    numbers = private_key.public_key().public_numbers()
    canonical = json.dumps({"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)},
                           separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def generate_key_pair(bits: int = 2048) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return KeyPair(key, thumbprint(key))


def load_or_create_key_pair(path: Path) -> KeyPair:
    """The key pair in `path` (PEM), generated there with mode 0600 if it does not exist yet."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return KeyPair(key, thumbprint(key))
    path.parent.mkdir(parents=True, exist_ok=True)
    pair = generate_key_pair()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pair.private_pem)
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process wrote first
    except FileExistsError:
        tmp.unlink()
        return load_or_create_key_pair(path)
    tmp.unlink()
    return pair


def tool_key_path(state_dir: Path) -> Path:
    return Path(state_dir) / "lti" / "tool-key.pem"


def local_lms_key_path(state_dir: Path) -> Path:
    return Path(state_dir) / "lti" / "local-lms-key.pem"
