"""Writes a throw-away PKI for the TLS tests into a directory: two certificate authorities
(`ca.pem`, and `other-ca.pem` that signed nothing the receiver uses), a server certificate for
127.0.0.1 (`server.pem`, `server.key`) and a client certificate (`client.pem`, `client.key`)
signed by `ca.pem`. ECDSA P-256 keys, valid for a day. Uses `cryptography`, which moto needs
anyway."""

import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_key(path, key):
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def write_cert(path, cert):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def authority(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def leaf(ca_key, ca_cert, cn, usage, san):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca = authority("trailwatch test CA")
    write_cert(out / "ca.pem", ca)
    _, other = authority("some other CA")
    write_cert(out / "other-ca.pem", other)
    key, cert = leaf(
        ca_key, ca, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    write_cert(out / "server.pem", cert)
    write_key(out / "server.key", key)
    key, cert = leaf(ca_key, ca, "trailwatch test client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    write_cert(out / "client.pem", cert)
    write_key(out / "client.key", key)


if __name__ == "__main__":
    main()
