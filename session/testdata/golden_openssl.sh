#!/usr/bin/env bash
# Checks an x25519 golden transcript with Ed25519 identities and the
# A256CBC-HS512 suite using the openssl 3.0 command line, printf and xxd
# only, following docs/PROTOCOL.md §6-§7 step by step:
#   golden_openssl.sh session/testdata/golden/x25519-ed25519.txt
# It rebuilds the requestor's hello signature input and verifies both
# signatures, derives the X25519 secret from the requestor's seed, runs the
# HKDF key schedule, checks and opens the sealed authentication key, and
# recomputes the Finished MAC. Any mismatch exits non-zero.
set -euo pipefail
golden=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
v() { grep "^$1=" "$golden" | cut -d= -f2; }
unhex() { xxd -r -p; }
hex() { xxd -p -c0; }
same() { # name got want
	if [[ $2 != "$3" ]]; then
		echo "golden_openssl: $1: got $2, want $3" >&2
		exit 1
	fi
}
# Ed25519 public keys as SPKI: openssl reads the DER form directly.
ed_pub() { v "$1" | unhex | openssl pkey -pubin -inform DER -out "$tmp/$2.pem"; }

# §6: the signature input is 64 spaces, the label, 0x00 and SHA-256 of the
# layout; Ed25519 signs those bytes as they are (-rawin).
sig_input() { # label layout-file
	printf '%*s' 64 ''
	printf '%s\0' "$1"
	openssl dgst -sha256 -binary "$2"
}
v requestor_hello_layout | unhex >"$tmp/l1"
sig_input 'lanpeer/v1 requestor hello' "$tmp/l1" >"$tmp/in1"
same requestor_hello_sig_input "$(hex <"$tmp/in1")" "$(v requestor_hello_sig_input)"
ed_pub requestor_spki rq
v hello_sig | unhex >"$tmp/sig1"
openssl pkeyutl -verify -pubin -inkey "$tmp/rq.pem" -rawin -in "$tmp/in1" -sigfile "$tmp/sig1" >/dev/null

v responder_hello_layout | unhex >"$tmp/l2"
sig_input 'lanpeer/v1 responder hello' "$tmp/l2" >"$tmp/in2"
same responder_hello_sig_input "$(hex <"$tmp/in2")" "$(v responder_hello_sig_input)"
ed_pub responder_spki rs
v reply_sig | unhex >"$tmp/sig2"
openssl pkeyutl -verify -pubin -inkey "$tmp/rs.pem" -rawin -in "$tmp/in2" -sigfile "$tmp/sig2" >/dev/null
th=$(openssl dgst -sha256 -binary "$tmp/l2" | hex)
same transcript_hash "$th" "$(v transcript_hash)"

# §7: X25519 from the requestor's ephemeral seed (PKCS#8 prefix) and the
# responder's share (SPKI prefix).
{ printf '302e020100300506032b656e04220420'; v requestor_kex_seed; } | unhex |
	openssl pkey -inform DER -out "$tmp/x.pem"
{ printf '302a300506032b656e032100'; v reply_share; } | unhex |
	openssl pkey -pubin -inform DER -out "$tmp/peer.pem"
shared=$(openssl pkeyutl -derive -inkey "$tmp/x.pem" -peerkey "$tmp/peer.pem" | hex)
same shared_secret "$shared" "$(v shared_secret)"

prk=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY \
	-kdfopt "hexkey:$shared" -kdfopt "hexsalt:$th" -binary HKDF | hex)
same prk "$prk" "$(v prk)"
expand() { # info length
	openssl kdf -keylen "$2" -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \
		-kdfopt "hexkey:$prk" -kdfopt "info:$1" -binary HKDF | hex
}
same k_c2s "$(expand 'lanpeer/v1 c2s' 64)" "$(v k_c2s)"
same k_s2c "$(expand 'lanpeer/v1 s2c' 64)" "$(v k_s2c)"
kseal=$(expand 'lanpeer/v1 auth key seal' 64)
same k_seal "$kseal" "$(v k_seal)"
kfin=$(expand 'lanpeer/v1 finished key' 32)
same k_finished "$kfin" "$(v k_finished)"

# The sealed authentication key, A256CBC-HS512 (RFC 7518 §5.2.2): IV(16) ‖
# E ‖ T(32), T = first 32 bytes of HMAC-SHA-512(k_seal[0:32], AAD ‖ IV ‖ E ‖
# AL), AL = the AAD's length in bits as 8 bytes; checked before decrypting
# with AES-256-CBC under k_seal[32:64].
sealed=$(v sealed_auth_key)
iv=${sealed:0:32} e=${sealed:32:$((${#sealed} - 96))} tag=${sealed: -64}
aad=$(v auth_key_seal_aad)
al=$(printf '%016x' $((${#aad} / 2 * 8)))
mac=$(printf '%s' "$aad$iv$e$al" | unhex |
	openssl dgst -sha512 -mac HMAC -macopt "hexkey:${kseal:0:64}" -binary | hex)
same auth_key_tag "${mac:0:64}" "$tag"
authkey=$(printf '%s' "$e" | unhex | openssl enc -d -aes-256-cbc -K "${kseal:64:64}" -iv "$iv" | hex)
same auth_key "$authkey" "$(v auth_key)"

# Finished: HMAC-SHA256(k_finished, layout of TH, the responder's
# signature, the sealed key as sent, SHA-256(auth key)).
akh=$(printf '%s' "$authkey" | unhex | openssl dgst -sha256 -binary | hex)
len() { printf '%08x' $((${#1} / 2)); }
sig2=$(v reply_sig)
fin=$(printf 'lanpeer/v1 requestor finished\0' | hex)$(len "$th")$th$(len "$sig2")$sig2$(len "$sealed")$sealed$(len "$akh")$akh
same finished_input "$fin" "$(v finished_input)"
finmac=$(printf '%s' "$fin" | unhex | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$kfin" -binary | hex)
same finished_mac "$finmac" "$(v finished_mac)"
echo "golden_openssl: $golden: every value checks"
