#!/usr/bin/env bash
# Checks an announcement example (docs/PROTOCOL.md §19.3) with openssl 3.0,
# printf and xxd only: the datagram is header ‖ len ‖ key ‖ len ‖ blob ‖
# len ‖ signature, the peer ID is SHA-256 of the key and the blob's first
# field, and the signature verifies over 64 × 0x20 ‖ label ‖ 00 ‖
# SHA-256(blob).
# Usage: announce_openssl.sh announce_example.txt
set -euo pipefail
file=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
get() { sed -n "s/^$1=//p" "$file"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

key=$(get key) blob=$(get blob) sig=$(get signature) peer=$(get peer_id) datagram=$(get datagram)
len() { printf '%04x' $((${#1} / 2)); }

# The datagram, assembled from its fields.
want="6c616e700101$(len "$key")$key$(len "$blob")$blob$(len "$sig")$sig"
[ "$want" = "$datagram" ] || { echo "datagram: fields do not assemble to it" >&2; exit 1; }

# The peer ID: SHA-256 of the key, and the blob's first field (after the
# 19-byte label, 00 and the 4-byte length 00000020).
xxd -r -p <<<"$key" >key.der
got=$(openssl dgst -sha256 -r key.der | cut -c1-64)
[ "$got" = "$peer" ] || { echo "peer_id: SHA-256 of the key is $got" >&2; exit 1; }
[ "${blob:0:48}" = "$(printf 'lanpeer/v1 announce\0' | xxd -p)00000020" ] || { echo "blob: label" >&2; exit 1; }
[ "${blob:48:64}" = "$peer" ] || { echo "blob: first field is not the peer ID" >&2; exit 1; }

# The signature.
xxd -r -p <<<"$blob" >blob.bin
xxd -r -p <<<"$sig" >sig.bin
{ printf '%*s' 64 ''; printf 'lanpeer/v1 announce\0'; openssl dgst -sha256 -binary blob.bin; } >in.bin
[ "$(xxd -p -c0 in.bin)" = "$(get sig_input)" ] || { echo "sig_input differs" >&2; exit 1; }
openssl pkeyutl -verify -pubin -keyform DER -inkey key.der -rawin -in in.bin -sigfile sig.bin >/dev/null ||
	{ echo "signature: verification failed" >&2; exit 1; }
echo "announcement example: OK"
