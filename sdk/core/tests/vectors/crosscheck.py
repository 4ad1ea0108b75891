#!/usr/bin/env python3
"""Independent cross-check of v1.json with Python `cryptography` (OpenSSL), sharing no code with
bcami-sdk. Recomputes: HIDs, public keys, the entropy key derivation, rejection sampling, the
hedged ECIES ephemeral key, every ECDSA signature, the session handshake (ECDH, transcript
hashes, HKDF key schedule, HMAC confirmations, both signatures, sealed records),
(RFC 6979 deterministic, then low-S normalised) byte for byte, ECIES (ECDH x, HKDF-SHA-256,
AES-256-GCM) encryption byte for byte and decryption, the ciphertext hash and all framing.

Run: python3 sdk/core/tests/vectors/crosscheck.py   (prints "N passed, 0 failed")
"""
import hashlib
import json
import pathlib
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
V = json.loads((pathlib.Path(__file__).parent / "v1.json").read_text())
X = bytes.fromhex
passed = failed = 0


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r} want {want!r}")


def key(hex_scalar):
    return ec.derive_private_key(int(hex_scalar, 16), ec.SECP256K1())


def compressed(private_or_public):
    pub = private_or_public.public_key() if hasattr(private_or_public, "public_key") else private_or_public
    return pub.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def sign_low_s(private, message):
    der = private.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    s = min(s, N - s)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


tags = {k: X(v) for k, v in V["domain_tags_hex"].items()}
inp = V["inputs"]
meter, new_meter, mdms = key(inp["meter_secret_key"]), key(inp["new_meter_secret_key"]), key(inp["mdms_secret_key"])
hid = hashlib.sha256(inp["meter_id"].encode()).digest()
mdms_hid = hashlib.sha256(inp["mdms_id"].encode()).digest()
check("meter hid", hid.hex(), V["derived"]["meter_hid"])
check("mdms hid", mdms_hid.hex(), V["derived"]["mdms_hid"])
check("meter public key", compressed(meter).hex(), V["derived"]["meter_public_key"])
check("new meter public key", compressed(new_meter).hex(), V["derived"]["new_meter_public_key"])
check("mdms public key", compressed(mdms).hex(), V["derived"]["mdms_public_key"])

# Key from entropy: HKDF-SHA-256(no salt, ikm=entropy, info=label||counter), first valid scalar.
label = tags["secret_key_from_entropy"]
entropy = X(V["entropy_key"]["entropy"])
prk = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label + b"\0")
scalar = prk.derive(entropy)
assert 0 < int.from_bytes(scalar, "big") < N
check("entropy key", scalar.hex(), V["entropy_key"]["secret_key"])


def header(kind, h, ts):
    return bytes([kind, 1]) + h + struct.pack(">Q", ts)


# Registrations and rotation.
body = header(1, hid, inp["registration_timestamp_ms"]) + compressed(meter)
check("meter registration", (body + sign_low_s(meter, tags["meter_registration"] + body)).hex(), V["meter_registration"])
body = header(4, mdms_hid, inp["registration_timestamp_ms"]) + compressed(mdms)
check("mdms registration", (body + sign_low_s(mdms, tags["mdms_registration"] + body)).hex(), V["mdms_registration"])
body = header(3, hid, inp["rotation_timestamp_ms"]) + compressed(new_meter)
rotation = body + sign_low_s(meter, tags["rotation_current_key"] + body) + sign_low_s(new_meter, tags["rotation_new_key"] + body)
check("key rotation", rotation.hex(), V["key_rotation"])

# Usage report v1.
r = inp["report"]
report = struct.pack(">BQIQQH", 1, r["interval_start_ms"], r["interval_length_s"], r["energy_wh"],
                     r["cumulative_register_wh"], r["quality_flags"])
check("usage report", report.hex(), V["usage_report"])

# Key generation from an RNG: 32-byte draws, big-endian, rejected if 0 or >= n.
keygen = X(inp["keygen_rng_output"])
assert int.from_bytes(keygen[:32], "big") >= N
check("generated key", keygen[32:64].hex(), V["generated_key"]["secret_key"])

# Reading. Hedged ephemeral scalar: HKDF-SHA-256(no salt, ikm = rng output || meter secret,
# info = label || counter || aad || report), first valid scalar (counter 0 here).
aad = header(2, hid, inp["reading_timestamp_ms"])
e_bytes = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=tags["ecies_ephemeral"] + b"\0" + aad + report).derive(
    X(inp["rng_output"]) + X(inp["meter_secret_key"]))
assert 0 < int.from_bytes(e_bytes, "big") < N
check("ephemeral secret", e_bytes.hex(), V["reading"]["ephemeral_secret"])
ephemeral = key(e_bytes.hex())
E = compressed(ephemeral)
P = compressed(mdms)
z = ephemeral.exchange(ec.ECDH(), mdms.public_key())
okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=E + P, info=tags["ecies_hkdf_info"]).derive(z)
rd = V["reading"]
check("ecdh x", z.hex(), rd["ecdh_shared_x"])
check("aes key", okm[:32].hex(), rd["aes_key"])
check("aes nonce", okm[32:].hex(), rd["aes_nonce"])
ciphertext = E + AESGCM(okm[:32]).encrypt(okm[32:], report, aad)
check("ciphertext", ciphertext.hex(), rd["ciphertext"])
digest = hashlib.sha256(ciphertext).digest()
check("ciphertext hash", digest.hex(), rd["ciphertext_sha256"])
signed = tags["reading"] + aad + digest
check("signed message", signed.hex(), rd["signed_message"])
wire = aad + struct.pack(">H", len(ciphertext)) + ciphertext + sign_low_s(meter, signed)
check("reading", wire.hex(), rd["encoded"])
check("overhead", len(wire) - len(report), 157)

# MDMS side: decrypt the committed bytes with only the MDMS key.
w = X(rd["encoded"])
length = struct.unpack(">H", w[42:44])[0]
ct = w[44:44 + length]
peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ct[:33])
z2 = mdms.exchange(ec.ECDH(), peer)
okm2 = HKDF(algorithm=hashes.SHA256(), length=44, salt=ct[:33] + P, info=tags["ecies_hkdf_info"]).derive(z2)
check("decrypt", AESGCM(okm2[:32]).decrypt(okm2[32:], ct[33:], w[:42]).hex(), V["usage_report"])

# Negative vectors at the decrypt stage: the signature must verify (so only decryption rejects).
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

for case in V["negative"]:
    if case["stage"] != "decrypt":
        continue
    w = X(case["encoded"])
    length = struct.unpack(">H", w[42:44])[0]
    ct, sig = w[44:44 + length], w[44 + length:]
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    signed = tags["reading"] + w[:42] + hashlib.sha256(ct).digest()
    try:
        meter.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))
        check(f"{case['case']}: signature verifies", True, True)
    except InvalidSignature:
        check(f"{case['case']}: signature verifies", False, True)
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ct[:33])
    z = mdms.exchange(ec.ECDH(), peer)
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=ct[:33] + P, info=tags["ecies_hkdf_info"]).derive(z)
    try:
        plaintext = AESGCM(okm[:32]).decrypt(okm[32:], ct[33:], w[:42])
        outcome = "Report(UnknownQualityFlags { bits: %d })" % (struct.unpack(">H", plaintext[29:31])[0] & ~0xF)
    except InvalidTag:
        outcome = "Aead"
    check(case["case"], outcome, case["error"])

# Session handshake (meter <-> head-end): rebuild all three messages and both sealed records from
# the inputs alone.
import hmac as hmac_mod

S = V["session"]
si, sd = S["inputs"], S["derived"]
stags = {k: X(v) for k, v in V["domain_tags_hex"].items() if k.startswith("session")}
s_meter = key(si["meter_secret_key"])
s_head_end = key(si["head_end_secret_key"])
s_hid = hashlib.sha256(si["meter_id"].encode()).digest()
s_ahe = hashlib.sha256(si["head_end_id"].encode()).digest()
check("head-end hid", s_ahe.hex(), sd["head_end_hid"])
check("head-end public key", compressed(s_head_end).hex(), sd["head_end_public_key"])
# The head-end's key registration (kind 0x09), with the top-level registration timestamp.
body = header(9, s_ahe, inp["registration_timestamp_ms"]) + compressed(s_head_end)
check("head-end registration",
      (body + sign_low_s(s_head_end, tags["head_end_registration"] + body)).hex(), V["head_end_registration"])
m_rng, h_rng = X(si["meter_rng_output"]), X(si["head_end_rng_output"])
x_key, y_key = key(m_rng[:32].hex()), key(h_rng[:32].hex())
s_init = header(5, s_hid, si["timestamp_ms"]) + compressed(x_key) + m_rng[32:48]
check("session init", s_init.hex(), S["session_init"])
body = bytes([6, 1]) + s_ahe + compressed(y_key) + h_rng[32:48]
z = x_key.exchange(ec.ECDH(), y_key.public_key())
check("session ecdh x (meter)", z.hex(), sd["ecdh_shared_x"])
check("session ecdh x (head-end)", y_key.exchange(ec.ECDH(), x_key.public_key()).hex(), sd["ecdh_shared_x"])
th1 = hashlib.sha256(stags["session_transcript"] + s_init + body).digest()
check("transcript hash 1", th1.hex(), sd["transcript_hash_1"])
okm = HKDF(algorithm=hashes.SHA256(), length=96, salt=th1, info=stags["session_keys_hkdf_info"]).derive(z)
check("confirmation key", okm[:32].hex(), sd["confirmation_key"])
check("meter to head-end key", okm[32:64].hex(), sd["meter_to_head_end_key"])
check("head-end to meter key", okm[64:].hex(), sd["head_end_to_meter_key"])
s_response = body + sign_low_s(s_head_end, stags["session_head_end_signature"] + th1) + \
    hmac_mod.new(okm[:32], stags["session_head_end_mac"] + th1, hashlib.sha256).digest()
check("session response", s_response.hex(), S["session_response"])
th2 = hashlib.sha256(stags["session_transcript"] + s_init + s_response).digest()
check("transcript hash 2", th2.hex(), sd["transcript_hash_2_session_id"])
s_confirm = bytes([7, 1]) + sign_low_s(s_meter, stags["session_meter_signature"] + th2) + \
    hmac_mod.new(okm[:32], stags["session_meter_mac"] + th2, hashlib.sha256).digest()
check("session confirm", s_confirm.hex(), S["session_confirm"])
s_aad = X(si["aad"])
for name, k, direction, plaintext in (
    ("sealed_meter_to_head_end", okm[32:64], 1, X(si["meter_to_head_end_plaintext"])),
    ("sealed_head_end_to_meter", okm[64:], 2, X(si["head_end_to_meter_plaintext"])),
):
    record_header = bytes([8, 1]) + struct.pack(">Q", 0)
    nonce = bytes([direction, 0, 0, 0]) + struct.pack(">Q", 0)
    check(name, (record_header + AESGCM(k).encrypt(nonce, plaintext, record_header + s_aad)).hex(), S[name])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
