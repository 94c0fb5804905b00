#!/usr/bin/env bash
# lanpeer's room-key wrap (DESIGN.md §5 "The wrap, exactly", §11 "Room-key
# wrap, byte by byte") with the openssl 3.0 command line alone: bash,
# openssl, od, sed and coreutils. HPKE base mode (RFC 9180) with
# DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and the export-only AEAD, then
# A256CBC-HS512 (RFC 7518 §5.2.5) under the exported key.
#
#   roomkey_openssl.sh unwrap [-v] FILE
#       FILE holds skR, enc, info and wrapped; prints the 64-byte room key
#       in hex, or fails if the MAC does not check.
#   roomkey_openssl.sh wrap [-v] FILE
#       FILE holds pkR, info and room_key, and may hold skE and iv (fresh
#       random ones from `openssl rand` otherwise); prints enc=HEX and
#       wrapped=HEX.
#
# FILE is key=value lines of lowercase hex, as in roomkey_wrap_example.txt
# (other lines are ignored). With -v every intermediate value is printed
# too, as key=value lines named as in that file.
set -euo pipefail

die() {
	echo "roomkey_openssl.sh: $*" >&2
	exit 1
}

usage="usage: roomkey_openssl.sh unwrap|wrap [-v] FILE"
[[ $# -ge 2 ]] || die "$usage"
mode=$1
shift
verbose=false
if [[ $1 == -v ]]; then
	verbose=true
	shift
fi
[[ $# -eq 1 ]] || die "$usage"
file=$1
[[ -r $file ]] || die "cannot read $file"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# get KEY: the value of KEY= in FILE (empty if absent).
get() { sed -n "s/^$1=//p" "$file" | head -n 1; }

# unhex HEX: the bytes, on stdout.
unhex() {
	[[ $1 =~ ^([0-9a-f][0-9a-f])*$ ]] || die "not lowercase hex: $1"
	printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"
}

# tohex: stdin as lowercase hex, on one line.
tohex() { od -An -v -tx1 | tr -d ' \n'; }

# ascii TEXT: TEXT's bytes in hex.
ascii() { printf '%s' "$1" | tohex; }

# need NAME HEX LEN: HEX must be LEN bytes.
need() { [[ ${#2} -eq $(($3 * 2)) ]] || die "$1 must be $3 bytes (got $((${#2} / 2)))"; }

show() { if $verbose; then echo "$1=$2"; fi; }

# ---- X25519 with pkeyutl -derive ----
# openssl reads raw X25519 keys only inside DER wrappers: PKCS#8 for a private
# key, SubjectPublicKeyInfo for a public one; both end in the 32 raw bytes.
x25519_pkcs8=302e020100300506032b656e04220420
x25519_spki=302a300506032b656e032100

# x25519_pub SK: the raw public key of private key SK.
x25519_pub() {
	unhex "$x25519_pkcs8$1" >"$tmp/sk.der"
	openssl pkey -inform DER -in "$tmp/sk.der" -pubout -outform DER | tail -c 32 | tohex
}

# x25519_dh SK PEER: the raw shared secret.
x25519_dh() {
	unhex "$x25519_pkcs8$1" >"$tmp/sk.der"
	unhex "$x25519_spki$2" >"$tmp/peer.der"
	openssl pkeyutl -derive -keyform DER -inkey "$tmp/sk.der" -peerform DER -peerkey "$tmp/peer.der" | tohex
}

# ---- RFC 9180 LabeledExtract / LabeledExpand with `openssl kdf HKDF` ----
hpke_v1=$(ascii "HPKE-v1")
kem_suite_id=$(ascii "KEM")0020            # "KEM" ‖ DHKEM(X25519, HKDF-SHA256)
hpke_suite_id=$(ascii "HPKE")00200001ffff  # "HPKE" ‖ KEM ‖ HKDF-SHA256 ‖ export-only

# labeled_extract SUITE SALT LABEL IKM = HKDF-Extract(SALT, "HPKE-v1" ‖ SUITE
# ‖ LABEL ‖ IKM). An empty salt is left out (HKDF then uses 32 zero bytes).
labeled_extract() {
	local args=(-keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY
		-kdfopt "hexkey:$hpke_v1$1$(ascii "$3")$4")
	[[ -z $2 ]] || args+=(-kdfopt "hexsalt:$2")
	openssl kdf "${args[@]}" -binary HKDF | tohex
}

# labeled_expand SUITE PRK LABEL INFO L = HKDF-Expand(PRK, I2OSP(L, 2) ‖
# "HPKE-v1" ‖ SUITE ‖ LABEL ‖ INFO, L).
labeled_expand() {
	openssl kdf -keylen "$5" -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \
		-kdfopt "hexkey:$2" -kdfopt "hexinfo:$(printf '%04x' "$5")$hpke_v1$1$(ascii "$3")$4" \
		-binary HKDF | tohex
}

# key_schedule: from dh, enc, pkR and info, the DHKEM shared secret, the HPKE
# key schedule (mode_base, no PSK) and the exported key-encryption key.
key_schedule() {
	kem_context=$enc$pkR
	eae_prk=$(labeled_extract "$kem_suite_id" "" eae_prk "$dh")
	shared_secret=$(labeled_expand "$kem_suite_id" "$eae_prk" shared_secret "$kem_context" 32)
	psk_id_hash=$(labeled_extract "$hpke_suite_id" "" psk_id_hash "")
	info_hash=$(labeled_extract "$hpke_suite_id" "" info_hash "$info")
	key_schedule_context=00$psk_id_hash$info_hash
	secret=$(labeled_extract "$hpke_suite_id" "$shared_secret" secret "")
	exporter_secret=$(labeled_expand "$hpke_suite_id" "$secret" exp "$key_schedule_context" 32)
	# The export context is the bare ASCII label, no canon framing.
	kek=$(labeled_expand "$hpke_suite_id" "$exporter_secret" sec "$(ascii "lanpeer/v1 room key wrap")" 64)
	mac_key=${kek:0:64}
	enc_key=${kek:64:64}
	for v in pkR dh kem_context eae_prk shared_secret psk_id_hash info_hash \
		key_schedule_context secret exporter_secret kek mac_key enc_key; do
		show "$v" "${!v}"
	done
}

# tag: T = HMAC-SHA-512(mac_key, info ‖ iv ‖ E ‖ AL)[0:32].
tag() {
	unhex "$info$iv$E$AL" >"$tmp/mac_input"
	openssl dgst -sha512 -mac HMAC -macopt "hexkey:$mac_key" -binary "$tmp/mac_input" | head -c 32 | tohex
}

info=$(get info)
[[ -n $info ]] || die "$file has no info="
AL=$(printf '%016x' $((${#info} / 2 * 8))) # bit length of info, 8 bytes big-endian

case $mode in
unwrap)
	skR=$(get skR)
	enc=$(get enc)
	wrapped=$(get wrapped)
	need skR "$skR" 32
	need enc "$enc" 32
	need wrapped "$wrapped" 128
	pkR=$(x25519_pub "$skR")
	dh=$(x25519_dh "$skR" "$enc")
	key_schedule
	iv=${wrapped:0:32}
	E=${wrapped:32:160}
	T=${wrapped:192:64}
	# The tag is checked before anything is decrypted.
	want=$(tag)
	show AL "$AL"
	show T "$want"
	[[ $want == "$T" ]] || die "MAC check failed: wrong key, or the wrapped key or info was changed"
	unhex "$E" >"$tmp/E"
	room_key=$(openssl enc -d -aes-256-cbc -K "$enc_key" -iv "$iv" -in "$tmp/E" | tohex)
	need room_key "$room_key" 64
	if $verbose; then
		echo "room_key=$room_key"
	else
		echo "$room_key"
	fi
	;;
wrap)
	pkR=$(get pkR)
	room_key=$(get room_key)
	skE=$(get skE)
	iv=$(get iv)
	need pkR "$pkR" 32
	need room_key "$room_key" 64
	[[ -n $skE ]] || skE=$(openssl rand -hex 32)
	[[ -n $iv ]] || iv=$(openssl rand -hex 16)
	need skE "$skE" 32
	need iv "$iv" 16
	enc=$(x25519_pub "$skE")
	dh=$(x25519_dh "$skE" "$pkR")
	key_schedule
	unhex "$room_key" >"$tmp/room_key"
	# PKCS#7 padding (openssl's default) gives the 64-byte key a full block.
	E=$(openssl enc -aes-256-cbc -K "$enc_key" -iv "$iv" -in "$tmp/room_key" | tohex)
	show E "$E"
	T=$(tag)
	show AL "$AL"
	show T "$T"
	echo "enc=$enc"
	echo "wrapped=$iv$E$T"
	;;
*)
	die "$usage"
	;;
esac
