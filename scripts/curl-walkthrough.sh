#!/usr/bin/env bash
# docs/CURL.md as a script: a lanpeer session with curl, openssl 3.0, jq,
# coreutils and xxd alone, against a running `lanpeer listen --http`, with a
# `lanpeer` peer (Bob, in ./bob) on the other side of a room.
#
#   scripts/curl-walkthrough.sh
#
# Run it in an empty directory; it writes its keys and JSON files there.
# Environment (defaults as in docs/CURL.md):
#   LANPEER_HTTP   the listener's HTTP shim       (http://127.0.0.1:7701)
#   LANPEER_TCP    the listener's TCP address     (127.0.0.1:7700)
#   LANPEER_PEER   the listener's peer ID         (empty: trust on first use)
# `lanpeer` must be on PATH for Bob's steps.
#
# Sourced (`. scripts/curl-walkthrough.sh`), it defines the helper functions
# of CURL.md's step 1 and stops; the tests in scripts/ check each of them
# against the Go implementation that way.
#
# Everything below the next line is generated from docs/CURL.md's bash blocks,
# in order: edit CURL.md, then run `go test ./scripts -update`.
# ---- generated from docs/CURL.md ----

# hex: standard input as lowercase hex on one line.
hex() { xxd -p | tr -d '\n'; }
# unhex HEX: the bytes, on standard output.
unhex() { printf '%s' "$1" | xxd -r -p; }
# txt TEXT: the hex of TEXT's bytes.
txt() { printf '%s' "$1" | hex; }
# b64 HEX: the bytes in base64; unb64 B64: base64 back to hex.
b64() { unhex "$1" | base64 -w0; }
unb64() { printf '%s' "$1" | base64 -d | hex; }
# u16 N, u64 N: N as 2 or 8 bytes big-endian.
u16() { printf '%04x' "$1"; }
u64() { printf '%016x' "$1"; }
# sha256 HEX: SHA-256 of the bytes.
sha256() { unhex "$1" | openssl dgst -sha256 -binary | hex; }
# now_ms: the time in Unix milliseconds.
now_ms() { date +%s%3N; }
# die MESSAGE: say what is wrong and fail (without closing your shell).
die() {
	echo "walkthrough: $*" >&2
	return 1
}

# field HEX: one field, a 4-byte big-endian length and the bytes.
field() { printf '%08x%s' $((${#1} / 2)) "$1"; }
# canon LABEL FIELD...: the canonical layout LABEL ‖ 0x00 ‖ each field.
canon() {
	local out f
	out=$(txt "$1")00
	shift
	for f in "$@"; do out+=$(field "$f"); done
	printf '%s' "$out"
}
# list ELEMENT...: the content of a list field.
list() {
	local out='' f
	for f in "$@"; do out+=$(field "$f"); done
	printf '%s' "$out"
}
# sig_input LABEL LAYOUT: what a signature covers.
sig_input() { printf '%s%s00%s' "$(printf '20%.0s' {1..64})" "$(txt "$1")" "$(sha256 "$2")"; }
# blob LAYOUT SIG: a signed blob; blob_layout and blob_sig take one apart.
blob() { printf '%s%s' "$(field "$1")" "$(field "$2")"; }
blob_layout() {
	local n=$((16#${1:0:8} * 2))
	printf '%s' "${1:8:n}"
}
blob_sig() {
	local n=$((16#${1:0:8} * 2))
	printf '%s' "${1:16+n}"
}
# fields LAYOUT: the fields after the label, one hex line each (read them
# with mapfile). fields "00$LIST" gives the elements of a list.
fields() {
	local l=$1 i=0 n
	while ((i < ${#l})) && [[ ${l:i:2} != 00 ]]; do i=$((i + 2)); done
	l=${l:i+2}
	while [[ -n $l ]]; do
		n=$((16#${l:0:8} * 2))
		printf '%s\n' "${l:8:n}"
		l=${l:8+n}
	done
}

# spki KEYFILE: the public key of a PEM key file, SPKI DER.
spki() { openssl pkey -in "$1" -pubout -outform DER | hex; }
# peer_id KEYFILE: the key's peer ID.
peer_id() { openssl pkey -in "$1" -pubout -outform DER | openssl dgst -sha256 -r | cut -c1-64; }
# raw_pub KEYFILE: the raw 32-byte public key of an X25519 or Ed25519 key.
raw_pub() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | hex; }
# sign KEYFILE LABEL LAYOUT: an Ed25519 signature of sig_input.
sign() {
	local in rc=0
	in=$(mktemp)
	sig_input "$2" "$3" | xxd -r -p >"$in"
	openssl pkeyutl -sign -rawin -inkey "$1" -in "$in" | hex || rc=1
	rm -f "$in"
	return $rc
}
# verify SPKI LABEL LAYOUT SIG: checks a signature by the key SPKI.
verify() {
	local d rc=0
	d=$(mktemp -d)
	unhex "$1" >"$d/key.der"
	unhex "$4" >"$d/sig"
	sig_input "$2" "$3" | xxd -r -p >"$d/in"
	if [[ $1 == 302a300506032b6570032100* ]]; then
		openssl pkeyutl -verify -rawin -pubin -keyform DER -inkey "$d/key.der" \
			-in "$d/in" -sigfile "$d/sig" >/dev/null 2>&1 || rc=1
	else
		openssl dgst -sha256 -verify "$d/key.der" -keyform DER -sigopt rsa_padding_mode:pss \
			-sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$d/sig" "$d/in" >/dev/null 2>&1 || rc=1
	fi
	rm -rf "$d"
	return $rc
}
# x25519 KEYFILE PEER: the X25519 shared secret with a raw public key.
x25519() {
	local p rc=0
	p=$(mktemp)
	unhex "302a300506032b656e032100$2" >"$p"
	openssl pkeyutl -derive -inkey "$1" -peerform DER -peerkey "$p" | hex || rc=1
	rm -f "$p"
	return $rc
}

# hkdf_extract SALT IKM: the pseudorandom key.
hkdf_extract() {
	local a=(-keylen 32 -kdfopt digest:SHA256 -kdfopt mode:EXTRACT_ONLY -kdfopt "hexkey:$2")
	[[ -z $1 ]] || a+=(-kdfopt "hexsalt:$1")
	openssl kdf "${a[@]}" -binary HKDF | hex
}
# hkdf_expand PRK INFO LENGTH: LENGTH bytes of key.
hkdf_expand() {
	openssl kdf -keylen "$3" -kdfopt digest:SHA256 -kdfopt mode:EXPAND_ONLY \
		-kdfopt "hexkey:$1" -kdfopt "hexinfo:$2" -binary HKDF | hex
}
# hmac_sha256 KEY DATA.
hmac_sha256() { unhex "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -binary | hex; }

# a256_tag MAC_KEY AAD IV E: the 32-byte tag.
a256_tag() {
	unhex "$2$3$4$(u64 $((${#2} * 4)))" | openssl dgst -sha512 -mac HMAC -macopt "hexkey:$1" -binary |
		head -c 32 | hex
}
# a256_seal KEY AAD PLAINTEXT [IV]: the box IV ‖ E ‖ T (a random IV unless given).
a256_seal() {
	local iv=${4:-$(openssl rand -hex 16)} e t
	e=$(unhex "$3" | openssl enc -aes-256-cbc -K "${1:64:64}" -iv "$iv" | hex)
	t=$(a256_tag "${1:0:64}" "$2" "$iv" "$e")
	printf '%s%s%s' "$iv" "$e" "$t"
}
# a256_open KEY AAD BOX: the plaintext, or a failure if the tag does not check.
a256_open() {
	local n=${#3} iv e t
	((n >= 128 && n % 32 == 0)) || die "a256_open: a box of $((n / 2)) bytes" || return
	iv=${3:0:32} e=${3:32:n-96}
	t=$(a256_tag "${1:0:64}" "$2" "$iv" "$e")
	[[ $t == "${3:n-64}" ]] || die "a256_open: the tag does not check (wrong key, or changed data)" || return
	unhex "$e" | openssl enc -d -aes-256-cbc -K "${1:64:64}" -iv "$iv" | hex
}

# hpke_extract SUITE SALT LABEL IKM and hpke_expand SUITE PRK LABEL INFO L.
hpke_extract() { hkdf_extract "$2" "$(txt HPKE-v1)$1$(txt "$3")$4"; }
hpke_expand() { hkdf_expand "$2" "$(u16 "$5")$(txt HPKE-v1)$1$(txt "$3")$4" "$5"; }
# wrap_kek DH ENC PKR INFO: the key-encryption key of one wrap.
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
# wrap_room_key PKR INFO ROOM_KEY [EPHEMERAL_KEYFILE [IV]]: prints "ENC WRAPPED".
wrap_room_key() {
	local eph=${4-} tmp='' enc kek w
	if [[ -z $eph ]]; then
		tmp=$(mktemp)
		openssl genpkey -algorithm X25519 -out "$tmp"
		eph=$tmp
	fi
	enc=$(raw_pub "$eph")
	kek=$(wrap_kek "$(x25519 "$eph" "$1")" "$enc" "$1" "$2")
	w=$(a256_seal "$kek" "$2" "$3" "${5-}")
	[[ -z $tmp ]] || rm -f "$tmp"
	printf '%s %s\n' "$enc" "$w"
}
# unwrap_room_key KEYFILE ENC INFO WRAPPED: the room key.
unwrap_room_key() {
	local kek
	kek=$(wrap_kek "$(x25519 "$1" "$2")" "$2" "$(raw_pub "$1")" "$3")
	a256_open "$kek" "$3" "$4"
}

# sender_key ROOM_KEY ROOM EPOCH SENDER: the sender's A256CBC-HS512 key.
sender_key() { hkdf_expand "$(hkdf_extract "" "$1")" "$(canon "lanpeer/v1 sender key" "$2" "$(u64 "$3")" "$4")" 64; }
# member_kp MEMBERS PEER: the key package hash a member list gives PEER.
member_kp() {
	local e
	while read -r e; do
		if [[ ${e:0:64} == "$2" ]]; then
			printf '%s' "${e:64}"
			return 0
		fi
	done < <(fields "00$1")
	die "$2 is not in the member list"
}

# key_package IDFILE HPKEFILE SIGNFILE CREATED EXPIRES: a signed key package.
key_package() {
	local l
	l=$(canon "lanpeer/v1 key package" "$(spki "$1")" "$(u16 32)" "$(raw_pub "$2")" "$(raw_pub "$3")" \
		"$(u64 "$4")" "$(u64 "$5")")
	blob "$l" "$(sign "$1" "lanpeer/v1 key package" "$l")"
}

# create_commit IDFILE ROOM NAME KP_HASH TIME: the signed commit of epoch 1,
# the master its only member.
create_commit() {
	local me l
	me=$(peer_id "$1")
	l=$(canon "lanpeer/v1 room commit" "$2" "$(u64 1)" "" "$(u16 1)" "$(txt "$3")" "$(u16 1)" "$me" \
		"$(list "$me$4")" "$(u64 "$5")")
	blob "$l" "$(sign "$1" "lanpeer/v1 room commit" "$l")"
}

# wrapped_key IDFILE ROOM EPOCH MEMBER KP_HASH HPKE_KEY ROOM_KEY: the room key
# wrapped to a member's key package (its raw HPKE key), signed.
wrapped_key() {
	local info w l
	info=$(canon "lanpeer/v1 room key wrap" "$2" "$(u64 "$3")" "$4" "$5")
	w=$(wrap_room_key "$6" "$info" "$7")
	l=$(canon "lanpeer/v1 wrapped key" "$2" "$(u64 "$3")" "$4" "$5" "${w% *}" "${w#* }")
	blob "$l" "$(sign "$1" "lanpeer/v1 wrapped key" "$l")"
}
# open_wrapped HPKEFILE MASTER_KEY BLOB ROOM EPOCH MEMBER KP_HASH: checks a
# wrapped key (the master's signature, addressed to this room, epoch, member
# and key package) and prints the room key.
open_wrapped() {
	local -a f
	verify "$2" "lanpeer/v1 wrapped key" "$(blob_layout "$3")" "$(blob_sig "$3")" ||
		die "a wrapped key not signed by the master" || return
	mapfile -t f < <(fields "$(blob_layout "$3")") # room, epoch, member, key package hash, enc, wrapped
	[[ ${f[0]} == "$4" && ${f[1]} == "$(u64 "$5")" && ${f[2]} == "$6" && ${f[3]} == "$7" ]] ||
		die "a wrapped key for another room, epoch, member or key package" || return
	unwrap_room_key "$1" "${f[4]}" "$(canon "lanpeer/v1 room key wrap" "$4" "$(u64 "$5")" "$6" "$7")" "${f[5]}"
}

# seal_message SIGNFILE ROOM_KEY ROOM EPOCH HEAD SENDER KP_HASH TEXT: a room
# message with a random message id, sealed and signed.
seal_message() {
	local -a h
	local box l
	h=("$3" "$(u64 "$4")" "$5" "$6" "$(openssl rand -hex 16)" "$7")
	box=$(a256_seal "$(sender_key "$2" "$3" "$4" "$6")" "$(canon "lanpeer/v1 room message aad" "${h[@]}")" "$(txt "$8")")
	l=$(canon "lanpeer/v1 room message" "${h[@]}" "$box")
	blob "$l" "$(sign "$1" "lanpeer/v1 room message" "$l")"
}

# open_message ROOM_KEY ROOM EPOCH HEAD MEMBERS BLOB SENDER_KP: checks a
# message against the head epoch and its sender's key package, then prints
# its text.
open_message() {
	local -a f k
	local p
	mapfile -t f < <(fields "$(blob_layout "$6")") # room, epoch, commit, sender, message id, key package hash, box
	[[ ${f[0]} == "$2" && ${f[1]} == "$(u64 "$3")" && ${f[2]} == "$4" ]] ||
		die "a message of another room, epoch or commit" || return
	[[ $(member_kp "$5" "${f[3]}") == "${f[5]}" ]] || die "the sender's key package is not the epoch's" || return
	[[ $(sha256 "$7") == "${f[5]}" ]] || die "another key package than the message names" || return
	mapfile -t k < <(fields "$(blob_layout "$7")") # identity key, KEM, HPKE key, signing key, created, expires
	[[ $(sha256 "${k[0]}") == "${f[3]}" ]] || die "the key package is not the sender's" || return
	verify "${k[0]}" "lanpeer/v1 key package" "$(blob_layout "$7")" "$(blob_sig "$7")" ||
		die "the sender's key package is not signed by the sender" || return
	verify "302a300506032b6570032100${k[3]}" "lanpeer/v1 room message" "$(blob_layout "$6")" "$(blob_sig "$6")" ||
		die "the message is not signed by its sender" || return
	p=$(a256_open "$(sender_key "$1" "$2" "$3" "${f[3]}")" \
		"$(canon "lanpeer/v1 room message aad" "${f[@]:0:6}")" "${f[6]}") || return
	unhex "$p"
}

# Sourced: stop here, with the functions defined. Run: the walkthrough,
# stopping at the first failure.
return 0 2>/dev/null || true
set -euo pipefail
shopt -s inherit_errexit

http=${LANPEER_HTTP:-http://127.0.0.1:7701}
tcp=${LANPEER_TCP:-127.0.0.1:7700}
peer=${LANPEER_PEER:-}
limit=${LANPEER_LIMIT:-100}
curl -sS --fail-with-body "$http/healthz"
echo

openssl genpkey -algorithm ed25519 -out alice.pem
me=$(peer_id alice.pem)
my_key=$(spki alice.pem)
echo "my peer ID: $me"

openssl genpkey -algorithm X25519 -out eph.pem
share=$(raw_pub eph.pem)
nonce=$(openssl rand -hex 32)
t=$(now_ms)
hello=$(canon "lanpeer/v1 requestor hello" "$(u64 1)" "$(txt http)" "" "$me" "$peer" "$my_key" \
	"$(u16 2)" "$(u16 1)" "$share" "$(list "$(u16 1)")" "$nonce" "$(u64 "$t")")
hello_sig=$(sign alice.pem "lanpeer/v1 requestor hello" "$hello")

jq -n --arg r "$peer" --arg ik "$(b64 "$my_key")" --arg ks "$(b64 "$(spki eph.pem)")" \
	--arg n "$(b64 "$nonce")" --argjson t "$t" --arg sig "$(b64 "$hello_sig")" \
	'{version: 1, responder: $r, identity_key: $ik, sig_alg: 2, kex: 1, share: $ks,
	  aeads: [1], nonce: $n, time: $t, sig: $sig}' >hello.json
curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @hello.json \
	"$http/v1/handshake/init" >reply.json
jq . reply.json

sid=$(jq -r .session reply.json)
their_key=$(unb64 "$(jq -r .identity_key reply.json)")
their_share=$(unb64 "$(jq -r .share reply.json)")
their_sig=$(unb64 "$(jq -r .sig reply.json)")
sealed=$(unb64 "$(jq -r .sealed_auth_key reply.json)")
their_id=$(sha256 "$their_key")
[[ -z $peer || $their_id == "$peer" ]] || die "the listener is $their_id, not $peer"
peer=$their_id
[[ $(jq -c '[.version, .kex, .aead]' reply.json) == '[1,1,1]' ]] || die "not version 1, x25519, A256CBC-HS512"
[[ $their_share == 302a300506032b656e032100* ]] || die "the listener's share is not an X25519 key"
reply_layout=$(canon "lanpeer/v1 responder hello" "$(sha256 "$hello")" "$hello_sig" "$sid" "$peer" \
	"$their_key" "$(u16 "$(jq -r .sig_alg reply.json)")" "$(u16 1)" "${their_share:24}" "$(u16 1)" \
	"$(unb64 "$(jq -r .nonce reply.json)")" "$(u64 "$(jq -r .time reply.json)")")
verify "$their_key" "lanpeer/v1 responder hello" "$reply_layout" "$their_sig" ||
	die "the listener's signature does not verify"
echo "talking to $peer"

shared=$(x25519 eph.pem "${their_share:24}")
th=$(sha256 "$reply_layout")
prk=$(hkdf_extract "$th" "$shared")
k_seal=$(hkdf_expand "$prk" "$(txt "lanpeer/v1 auth key seal")" 64)
k_fin=$(hkdf_expand "$prk" "$(txt "lanpeer/v1 finished key")" 32)
auth_key=$(a256_open "$k_seal" "$(canon "lanpeer/v1 auth key seal aad" "$th" "$sid")" "$sealed")
fin=$(hmac_sha256 "$k_fin" "$(canon "lanpeer/v1 requestor finished" "$th" "$their_sig" "$sealed" "$(sha256 "$auth_key")")")
jq -n --arg s "$sid" --arg m "$(b64 "$fin")" '{session: $s, mac: $m}' >finish.json
curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @finish.json \
	"$http/v1/handshake/finish"
echo

# lp METHOD TARGET [BODY]: a request in session $sid, MACed with $auth_key.
lp() {
	local body=${3-} ts nonce mac a=()
	ts=$(now_ms)
	nonce=$(openssl rand -hex 16)
	mac=$(hmac_sha256 "$auth_key" "$(canon "lanpeer/v1 http request" "$(txt "$sid")" "$(txt "$1")" \
		"$(txt "$2")" "$(txt "$(sha256 "$(txt "$body")")")" "$(txt "$ts")" "$(txt "$nonce")")")
	[[ -z $body ]] || a=(-H 'Content-Type: application/json' --data-binary "$body")
	curl -sS --fail-with-body -X "$1" -H "Lanpeer-Session: $sid" -H "Lanpeer-Timestamp: $ts" \
		-H "Lanpeer-Nonce: $nonce" -H "Lanpeer-Mac: $mac" "${a[@]}" "$http$2"
}
lp GET /v1/session | jq .

openssl genpkey -algorithm X25519 -out kp-hpke.pem
openssl genpkey -algorithm ed25519 -out kp-sign.pem
created=$(now_ms)
kp=$(key_package alice.pem kp-hpke.pem kp-sign.pem "$created" $((created + 30 * 86400000)))
kp_hash=$(sha256 "$kp")
lp POST /v1/key-packages "$(jq -cn --arg k "$(b64 "$kp")" '{key_package: $k}')"
echo

room=$(openssl rand -hex 16)
commit=$(create_commit alice.pem "$room" notes "$kp_hash" "$(now_ms)")
lp POST /v1/rooms "$(jq -cn --arg c "$(b64 "$commit")" '{commit: $c}')" | jq .

room_key=$(openssl rand -hex 64)
wk=$(wrapped_key alice.pem "$room" 1 "$me" "$kp_hash" "$(raw_pub kp-hpke.pem)" "$room_key")
lp POST "/v1/rooms/$room/wrapped-keys" "$(jq -cn --arg w "$(b64 "$wk")" '{wrapped: $w}')"
echo

wk=$(unb64 "$(lp GET "/v1/rooms/$room/wrapped-keys/1" | jq -r .wrapped)")
[[ $(open_wrapped kp-hpke.pem "$my_key" "$wk" "$room" 1 "$me" "$kp_hash") == "$room_key" ]] || die "another room key"
lp POST "/v1/rooms/$room/acks" '{"epoch":1}'
echo
lp GET "/v1/rooms/$room" | jq .

lanpeer init --home bob --key ed25519
lab=$(lanpeer dial --home bob "$tcp" room create lab)
lanpeer dial --home bob "$tcp" room invite "$lab" "$me"
echo "Bob's room: $lab"

prev='' epoch=0 master='' master_key=''
for ((page = 0; page < 10000; page++)); do
	list=$(lp GET "/v1/rooms/$lab/commits?after=$epoch&limit=$limit")
	if [[ -z $master ]]; then
		master=$(jq -r .master <<<"$list")
		master_key=$(unb64 "$(jq -r .master_key <<<"$list")")
		[[ $(sha256 "$master_key") == "$master" ]] || die "the host's master key is not the master's"
	fi
	n=0
	for c in $(jq -r '.commits[]' <<<"$list"); do
		c=$(unb64 "$c")
		verify "$master_key" "lanpeer/v1 room commit" "$(blob_layout "$c")" "$(blob_sig "$c")" ||
			die "a commit not signed by the master"
		mapfile -t f < <(fields "$(blob_layout "$c")") # room, epoch, previous, operation, name, suite, master, members, time
		[[ ${f[0]} == "$lab" && ${f[2]} == "$prev" && ${f[5]} == 0001 && ${f[6]} == "$master" ]] ||
			die "the commits do not chain"
		prev=$(sha256 "$c") epoch=$((16#${f[1]})) members=${f[7]} n=$((n + 1))
	done
	((n > 0 && epoch < $(jq .epoch <<<"$list"))) || break
done
[[ -n $prev ]] || die "no commits"
head=$prev
[[ $(member_kp "$members" "$me") == "$kp_hash" ]] || die "epoch $epoch lists another key package for me"
echo "room $lab at epoch $epoch, master $master"

wk=$(unb64 "$(lp GET "/v1/rooms/$lab/wrapped-keys/$epoch" | jq -r .wrapped)")
lab_key=$(open_wrapped kp-hpke.pem "$master_key" "$wk" "$lab" "$epoch" "$me" "$kp_hash")
lp POST "/v1/rooms/$lab/acks" "{\"epoch\":$epoch}"
echo

msg=$(seal_message kp-sign.pem "$lab_key" "$lab" "$epoch" "$head" "$me" "$kp_hash" 'hello from curl')
sent=$(lp POST "/v1/rooms/$lab/messages" "$(jq -cn --arg m "$(b64 "$msg")" '{message: $m}')")
echo "$sent"
seq=$(jq .seq <<<"$sent")

lanpeer dial --home bob "$tcp" read "$lab"
lanpeer dial --home bob "$tcp" send "$lab" 'hello from lanpeer'

for b in $(lp GET "/v1/rooms/$lab/messages?after=$seq&wait=30000" | jq -r '.messages[].message'); do
	m=$(unb64 "$b")
	mapfile -t f < <(fields "$(blob_layout "$m")") # room, epoch, commit, sender, message id, key package hash, box
	skp=$(unb64 "$(lp GET "/v1/key-packages/${f[5]}" | jq -r .key_package)")
	text=$(open_message "$lab_key" "$lab" "$epoch" "$head" "$members" "$m" "$skp")
	echo "verified message from ${f[3]}: $text"
done
