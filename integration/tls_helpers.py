"""PEM files for the TLS tests: certificates made per run with trustme, never committed keys."""

from __future__ import annotations

from pathlib import Path


class PemDir:
    """Writes CAs, certificates and keys as PEM files under one directory."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, name: str, data: bytes) -> str:
        """`data` as the file `name`; its path."""
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def pair(self, name: str, cert) -> tuple[str, str]:
        """A trustme certificate as `name.pem` (its chain, leaf first) and `name.key`; their paths."""
        chain = b"".join(p.bytes() for p in cert.cert_chain_pems)
        return self.write(f"{name}.pem", chain), self.write(f"{name}.key", cert.private_key_pem.bytes())
