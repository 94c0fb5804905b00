#!/usr/bin/env bash
# docs/CURL.md as a script: a lanpeer session with curl, openssl 3.0, jq,
# coreutils and xxd alone, against a running `lanpeer listen --http`.
#
#   scripts/curl-walkthrough.sh
#
# Environment (the defaults are CURL.md's):
#   LANPEER_HTTP   the shim's base URL            (http://127.0.0.1:7701)
#   LANPEER_PEER   the listener's peer ID         (learned on first use)
#
# Sourced (`. scripts/curl-walkthrough.sh`), it defines the functions and
# returns before the walkthrough; the Go tests check each function that way.
# Every command below the helper functions is a code block of docs/CURL.md,
# in the same order (scripts/curl_test.go checks it).

# ---- helper functions (docs/CURL.md, "Helper functions") ----

# hex: standard input as lowercase hex on one line.
hex() { xxd -p | tr -d '\n'; }
# unhex HEX: the bytes, on standard output.
unhex() { printf '%s' "$1" | xxd -r -p; }
# txt TEXT: the hex of TEXT's bytes.
txt() { printf '%s' "$1" | hex; }
# b64 HEX: the bytes in base64; unb64 B64: base64 back to hex.
b64() { unhex "$1" | base64 -w0; }
unb64() { printf '%s' "$1" | base64 -d | hex; }
# u16 N, u64 N: N as 2 or 8 bytes big-endian (hex).
u16() { printf '%04x' "$1"; }
u64() { printf '%016x' "$1"; }
# sha256 HEX: SHA-256 of the bytes (hex).
sha256() { unhex "$1" | openssl dgst -sha256 -binary | hex; }
# now_ms: the time in Unix milliseconds.
now_ms() { date +%s%3N; }

# field HEX: one canonical field, a 4-byte big-endian length and the bytes.
field() { printf '%08x%s' $((${#1} / 2)) "$1"; }
# canon LABEL FIELD...: the canonical layout, LABEL ‖ 0x00 ‖ each field.
canon() {
	local out f
	out=$(txt "$1")00
	shift
	for f in "$@"; do out+=$(field "$f"); done
	printf '%s' "$out"
}
# list ELEMENT...: a list field's content, each element as a field.
list() {
	local out= f
	for f in "$@"; do out+=$(field "$f"); done
	printf '%s' "$out"
}
# sig_input LABEL LAYOUT: what a signature covers, 64 × 0x20 ‖ LABEL ‖ 0x00
# ‖ SHA-256(LAYOUT).
sig_input() { printf '%s%s00%s' "$(printf '20%.0s' {1..64})" "$(txt "$1")" "$(sha256 "$2")"; }

# blob LAYOUT SIG: a signed blob, len(LAYOUT) ‖ LAYOUT ‖ len(SIG) ‖ SIG.
blob() { printf '%s%s' "$(field "$1")" "$(field "$2")"; }
# blob_layout BLOB, blob_sig BLOB: the two parts of a signed blob.
blob_layout() { local n=$((16#${1:0:8} * 2)); printf '%s' "${1:8:n}"; }
blob_sig() { local n=$((16#${1:0:8} * 2)); printf '%s' "${1:16+n}"; }
# fields LAYOUT: the fields of a layout after its label, one hex line each.
fields() {
	local l=$1 i=0 n
	while ((i < ${#l})) && [[ ${l:i:2} != 00 ]]; do i=$((i + 2)); done # the label ends at the first 00 byte
	l=${l:i+2}
	while [[ -n $l ]]; do
		n=$((16#${l:0:8} * 2))
		printf '%s\n' "${l:8:n}"
		l=${l:8+n}
	done
}

# spki KEYFILE: the public key of a PEM key file as SubjectPublicKeyInfo DER (hex).
spki() { openssl pkey -in "$1" -pubout -outform DER | hex; }
# peer_id KEYFILE: SHA-256 of the SPKI, the key's peer ID.
peer_id() { openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -r | cut -c1-64; }
# raw_pub KEYFILE: the raw 32-byte public key of an X25519 or Ed25519 key file.
raw_pub() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | hex; }

# sign KEYFILE LABEL LAYOUT: the Ed25519 signature of sig_input (hex).
sign() {
	local in
	in=$(mktemp)
	sig_input "$2" "$3" | xxd -r -p >"$in"
	openssl pkeyutl -sign -rawin -inkey "$1" -in "$in" | hex
	rm -f "$in"
}
# verify SPKI LABEL LAYOUT SIG: checks a signature by the key SPKI (Ed25519,
# or RSASSA-PSS with SHA-256 and a 32-byte salt for an RSA key).
verify() {
	local d ok=0
	d=$(mktemp -d)
	unhex "$1" >"$d/key.der"
	unhex "$4" >"$d/sig"
	sig_input "$2" "$3" | xxd -r -p >"$d/in"
	if [[ $1 == 302a300506032b6570032100* ]]; then
		openssl pkeyutl -verify -rawin -pubin -keyform DER -inkey "$d/key.der" \
			-in "$d/in" -sigfile "$d/sig" >/dev/null 2>&1 || ok=1
	else
		openssl dgst -sha256 -verify "$d/key.der" -keyform DER -sigopt rsa_padding_mode:pss \
			-sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$d/sig" "$d/in" >/dev/null 2>&1 || ok=1
	fi
	rm -rf "$d"
	return $ok
}

# x25519 KEYFILE PEER: X25519 of a private key file and a raw public key.
x25519() {
	local p
	p=$(mktemp)
	unhex "302a300506032b656e032100$2" >"$p"
	openssl pkeyutl -derive -inkey "$1" -peerform DER -peerkey "$p" | hex
	rm -f "$p"
}

# hkdf_extract SALT IKM: HKDF-Extract with SHA-256 (an empty SALT is left
# out: HKDF then uses 32 zero bytes).
hkdf_extract() {
	local a=(-keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY -kdfopt "hexkey:$2")
	[[ -z $1 ]] || a+=(-kdfopt "hexsalt:$1")
	openssl kdf "${a[@]}" -binary HKDF | hex
}
# hkdf_expand PRK INFO LENGTH: HKDF-Expand with SHA-256.
hkdf_expand() {
	openssl kdf -keylen "$3" -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \
		-kdfopt "hexkey:$1" -kdfopt "hexinfo:$2" -binary HKDF | hex
}
# hmac_sha256 KEY DATA: HMAC-SHA-256 (hex key and data).
hmac_sha256() { unhex "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -binary | hex; }

# A256CBC-HS512 (RFC 7518 §5.2.2): KEY is MAC key ‖ encryption key (32
# bytes each); the box is IV ‖ E ‖ T with E = AES-256-CBC(PKCS#7(plaintext))
# and T = HMAC-SHA-512(MAC key, AAD ‖ IV ‖ E ‖ AL)[0:32], AL the bit length
# of AAD as 8 bytes big-endian.
a256_tag() { # MAC_KEY AAD IV E
	unhex "$2$3$4$(u64 $((${#2} * 4)))" | openssl dgst -sha512 -mac HMAC -macopt "hexkey:$1" -binary |
		head -c 32 | hex
}
# a256_seal KEY AAD PLAINTEXT [IV]: the box (hex); IV is random unless given.
a256_seal() {
	local iv=${4:-$(openssl rand -hex 16)} e
	e=$(unhex "$3" | openssl enc -aes-256-cbc -K "${1:64:64}" -iv "$iv" | hex)
	printf '%s%s%s' "$iv" "$e" "$(a256_tag "${1:0:64}" "$2" "$iv" "$e")"
}
# a256_open KEY AAD BOX: the plaintext (hex), checking the tag first.
a256_open() {
	local n=${#3} iv e
	((n >= 128 && n % 32 == 0)) || { echo "a256_open: box of $((n / 2)) bytes" >&2 && return 1; }
	iv=${3:0:32} e=${3:32:n-96}
	[[ $(a256_tag "${1:0:64}" "$2" "$iv" "$e") == "${3:n-64}" ]] || { echo "a256_open: the tag does not check" >&2 && return 1; }
	unhex "$e" | openssl enc -d -aes-256-cbc -K "${1:64:64}" -iv "$iv" | hex
}

# HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256
# and the export-only AEAD: the room-key wrap's key-encryption key.
hpke_extract() { hkdf_extract "$2" "$(txt HPKE-v1)$1$(txt "$3")$4"; } # SUITE SALT LABEL IKM
hpke_expand() { hkdf_expand "$2" "$(u16 "$5")$(txt HPKE-v1)$1$(txt "$3")$4" "$5"; } # SUITE PRK LABEL INFO L
# wrap_kek DH ENC PKR INFO: the 64-byte key that seals a room key.
wrap_kek() {
	local kem hpke prk ss ksc secret exp
	kem=$(txt KEM)0020 hpke=$(txt HPKE)00200001ffff
	prk=$(hpke_extract "$kem" "" eae_prk "$1")
	ss=$(hpke_expand "$kem" "$prk" shared_secret "$2$3" 32)
	ksc=00$(hpke_extract "$hpke" "" psk_id_hash "")$(hpke_extract "$hpke" "" info_hash "$4")
	secret=$(hpke_extract "$hpke" "$ss" secret "")
	exp=$(hpke_expand "$hpke" "$secret" exp "$ksc" 32)
	hpke_expand "$hpke" "$exp" sec "$(txt "lanpeer/v1 room key wrap")" 64
}
# wrap_room_key PKR INFO ROOM_KEY [EPHEMERAL_KEYFILE [IV]]: prints ENC and
# the wrapped key (IV ‖ E ‖ T), one a line.
wrap_room_key() {
	local eph=${4-} tmp= enc
	if [[ -z $eph ]]; then
		tmp=$(mktemp)
		openssl genpkey -algorithm X25519 -out "$tmp"
		eph=$tmp
	fi
	enc=$(raw_pub "$eph")
	printf '%s\n%s\n' "$enc" "$(a256_seal "$(wrap_kek "$(x25519 "$eph" "$1")" "$enc" "$1" "$2")" "$2" "$3" "${5-}")"
	[[ -z $tmp ]] || rm -f "$tmp"
}
# unwrap_room_key KEYFILE ENC INFO WRAPPED: the room key (hex).
unwrap_room_key() {
	a256_open "$(wrap_kek "$(x25519 "$1" "$2")" "$2" "$(raw_pub "$1")" "$3")" "$3" "$4"
}

# Return here when sourced: the functions are defined, the walkthrough is
# not run.
return 0 2>/dev/null || true

# ---- the walkthrough (the code blocks of docs/CURL.md, in order) ----
set -euo pipefail
