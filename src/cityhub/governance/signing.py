"""Ed25519 keys and signed tree heads of the audit ledger.

The key lives in a PEM file (generated on first use, mode 0600); a tree head signs the text
`cityhub-ledger-v1\\n<size>\\n<root hex>\\n<timestamp>` so any Ed25519 tool can check it.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEAD_PREFIX = "cityhub-ledger-v1"


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head: the root of the first `size` records at `signed_at` (ISO UTC)."""

    size: int
    root: str  # hex
    signed_at: str
    signature: str  # base64
    key_id: str

    def message(self) -> bytes:
        return head_message(self.size, self.root, self.signed_at)


def head_message(size: int, root_hex: str, signed_at: str) -> bytes:
    return f"{HEAD_PREFIX}\n{size}\n{root_hex}\n{signed_at}".encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The private key in `path`; a new one is written there (0600) when the file is absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written whole under a temporary name, then linked: two hub processes starting
        # together keep one key, and neither reads a half-written file.
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file holding either the public or the private key."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        return private.public_key()
    public = serialization.load_pem_public_key(data)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return public


def sign_head(key: Ed25519PrivateKey, size: int, root_hex: str, signed_at: str) -> TreeHead:
    signature = key.sign(head_message(size, root_hex, signed_at))
    return TreeHead(size, root_hex, signed_at, base64.b64encode(signature).decode(),
                    key_id(key.public_key()))


def head_signature_valid(public: Ed25519PublicKey, head: TreeHead) -> bool:
    try:
        public.verify(base64.b64decode(head.signature, validate=True), head.message())
    except (InvalidSignature, ValueError):
        return False
    return True
