#!/usr/bin/env bash
# keygen and release: secret key files, deterministic builds, signing in place, and
# verify's refusals with exit 10 (untrusted) or 3 (malformed). No database needed.
source "$(dirname "$0")/lib.sh"
fl_need_flotilla

dir=$(fl_tmpdir)
cd "$dir"

# keygen: a 0600 file, the id and public key printed; never overwriting.
assert_exit 0 "$FLOTILLA" keygen --kind release --out release.key
[[ "$OUT" =~ ^key\ id:\ ([0-9a-f]{16})$'\n'public\ key:\ ([A-Za-z0-9+/]{43}=)$ ]] ||
	fl_fail "unexpected keygen output: $OUT"
id=${BASH_REMATCH[1]}
pub=${BASH_REMATCH[2]}
assert_eq "$(stat -c %a release.key)" 600 "mode of release.key"
assert_contains "$(cat release.key)" "kind: release"
assert_contains "$(cat release.key)" "public: $pub"
cp release.key release.key.orig
assert_exit 1 "$FLOTILLA" keygen --kind release --out release.key
assert_contains "$ERR" "cannot create 'release.key': it already exists"
cmp -s release.key release.key.orig || fl_fail "keygen changed an existing key file"
assert_exit 0 "$FLOTILLA" keygen --kind release --out other.key --json
[[ "$OUT" =~ \"key_id\":\"([0-9a-f]{16})\" ]] || fl_fail "no key_id in: $OUT"
other_id=${BASH_REMATCH[1]}
[[ "$OUT" =~ \"public_key\":\"([A-Za-z0-9+/=]{44})\" ]] || fl_fail "no public_key in: $OUT"
other_pub=${BASH_REMATCH[1]}
assert_contains "$OUT" '"kind":"release"'
assert_exit 0 "$FLOTILLA" keygen --kind agent --out agent.key
assert_exit 2 "$FLOTILLA" keygen --kind root --out root.key
assert_contains "$ERR" "unknown key kind 'root'"
[ ! -e root.key ] || fl_fail "keygen created a file for a bad kind"
assert_exit 2 "$FLOTILLA" keygen --kind release

# build: the same folder, project and sequence, or a copy of the folder
# elsewhere, give the same bytes; both are required, and part of the hash.
fl_gen_migrations migrations 7
assert_exit 2 "$FLOTILLA" release build --dir migrations --out r1.release
assert_contains "$ERR" "--project ID is required"
assert_exit 2 "$FLOTILLA" release build --dir migrations --project acme --out r1.release
assert_contains "$ERR" "--sequence N is required"
assert_exit 2 "$FLOTILLA" release build --dir migrations --project acme --sequence 0 --out r1.release
assert_contains "$ERR" "--sequence: '0' is not a number from 1"
assert_exit 2 "$FLOTILLA" release build --dir migrations --project 'a/b' --sequence 1 --out r1.release
assert_contains "$ERR" "--project: invalid project id 'a/b'"
[ ! -e r1.release ] || fl_fail "a refused build wrote a file"
assert_exit 0 "$FLOTILLA" release build --dir migrations --project acme --sequence 12 --out r1.release
[[ "$OUT" =~ hash:\ ([0-9a-f]{64}) ]] || fl_fail "no hash in: $OUT"
hash=${BASH_REMATCH[1]}
assert_contains "$OUT" "migrations: 7"
assert_contains "$OUT" "project: acme"
assert_contains "$OUT" "sequence: 12"
cp -r migrations "$(fl_tmpdir)/copy"
copy=$(ls -d "$FL_TMP_ROOT"/d.*/copy)
assert_exit 0 "$FLOTILLA" release build --dir "$copy" --project acme --sequence 12 --out r2.release --json
assert_contains "$OUT" "\"hash\":\"$hash\""
assert_contains "$OUT" '"project":"acme","sequence":12,"migrations":7'
cmp -s r1.release r2.release || fl_fail "two builds of one folder differ"
assert_eq "$(stat -c %a r1.release)" 644 "mode of a release file"
assert_exit 0 "$FLOTILLA" release build --dir migrations --project acme --sequence 13 --out r13.release
[[ "$OUT" =~ hash:\ ([0-9a-f]{64}) ]] || fl_fail "no hash in: $OUT"
[ "${BASH_REMATCH[1]}" != "$hash" ] || fl_fail "another sequence gave the same hash"

# show and verify before signing.
assert_exit 0 "$FLOTILLA" release show r1.release
assert_contains "$OUT" "hash: $hash"
assert_contains "$OUT" "project: acme"
assert_contains "$OUT" "sequence: 12"
assert_contains "$OUT" "signatures: 0"
assert_exit 0 "$FLOTILLA" release show r1.release --json
assert_contains "$OUT" '"sequence":12'
assert_exit 10 "$FLOTILLA" release verify --trust "$pub" r1.release
assert_contains "$ERR" "release 'r1.release': no signature by a trusted key (not signed; trusted: $id)"

# sign in place, then verify with the right key and with another.
assert_exit 0 "$FLOTILLA" release sign --key release.key r1.release
assert_contains "$OUT" "signed $hash as $id (1 signature)"
assert_exit 0 "$FLOTILLA" release verify --trust "$pub" r1.release
assert_eq "$OUT" "verified: $hash, project acme, sequence 12, 7 migrations, signed by $id"
# The release expected: its project, its hash.
assert_exit 0 "$FLOTILLA" release verify --trust "$pub" --project acme --hash "$hash" r1.release
assert_exit 10 "$FLOTILLA" release verify --trust "$pub" --project other r1.release
assert_contains "$ERR" "a release of project 'acme', not of 'other'"
wrong=$(printf '%s' "$hash" | tr '0-9a-f' 'f0-9a-e')
assert_exit 10 "$FLOTILLA" release verify --trust "$pub" --hash "$wrong" r1.release
assert_contains "$ERR" "content hash $hash, not the expected $wrong"
assert_exit 2 "$FLOTILLA" release verify --trust "$pub" --hash abc r1.release
assert_exit 10 "$FLOTILLA" release verify --trust "$other_pub" r1.release
assert_eq "$ERR" "flotilla: error: release 'r1.release': no signature by a trusted key (signed by $id; trusted: $other_id)"
assert_exit 0 "$FLOTILLA" release verify --trust "$other_pub" --trust "$pub" r1.release --json
assert_contains "$OUT" '"verified":true'
assert_contains "$OUT" "\"signed_by\":\"$id\""
ls r1.release.tmp.* >/dev/null 2>&1 && fl_fail "sign left a temporary file"

# One signature per key; a second key adds its own.
cp r1.release signed.orig
assert_exit 1 "$FLOTILLA" release sign --key release.key r1.release
assert_contains "$ERR" "already signed by $id"
cmp -s r1.release signed.orig || fl_fail "a refused sign changed the file"
assert_exit 0 "$FLOTILLA" release sign --key other.key r1.release
assert_contains "$OUT" "(2 signatures)"
assert_exit 0 "$FLOTILLA" release show r1.release
assert_contains "$OUT" "signatures: 2"
assert_contains "$OUT" "$id  $pub  valid"
assert_contains "$OUT" "$other_id  $other_pub  valid"
assert_exit 0 "$FLOTILLA" release verify --trust "$other_pub" r1.release
assert_contains "$OUT" "signed by $other_id"

# A byte changed in the SQL: the signature no longer verifies.
cp signed.orig tampered.release
off=$(grep -obUa 'CREATE TABLE' tampered.release | head -n 1 | cut -d: -f1)
[ -n "$off" ] || fl_fail "no SQL found in the release file"
printf 'c' | dd of=tampered.release bs=1 seek="$off" conv=notrunc status=none
assert_exit 10 "$FLOTILLA" release verify --trust "$pub" tampered.release
assert_contains "$ERR" "signature by trusted key $id does not verify"
assert_exit 10 "$FLOTILLA" release sign --key other.key tampered.release
assert_contains "$ERR" "signature by $id does not verify: refusing to add mine"
# Not a release file at all, or cut short.
head -c 100 /dev/urandom >garbage.release
printf '\377\377\377' >>garbage.release
assert_exit 3 "$FLOTILLA" release verify --trust "$pub" garbage.release
assert_contains "$ERR" "release 'garbage.release': malformed"
head -c 200 signed.orig >short.release
assert_exit nonzero "$FLOTILLA" release verify --trust "$pub" short.release
assert_exit 1 "$FLOTILLA" release verify --trust "$pub" missing.release
assert_contains "$ERR" "cannot open 'missing.release'"

# The key file must be the owner's alone, and of the release kind.
chmod 644 release.key
cp r2.release r2.orig
assert_exit 1 "$FLOTILLA" release sign --key release.key r2.release
assert_contains "$ERR" "refusing 'release.key': readable by others (mode 0644); chmod 600 it"
cmp -s r2.release r2.orig || fl_fail "a refused sign changed the file"
chmod 600 release.key
assert_exit 1 "$FLOTILLA" release sign --key agent.key r2.release
assert_contains "$ERR" "'agent.key' holds an agent key, expected a release key"
assert_exit 0 "$FLOTILLA" release sign --key release.key r2.release

# Usage errors.
assert_exit 2 "$FLOTILLA" release
assert_exit 2 "$FLOTILLA" release frobnicate
assert_exit 2 "$FLOTILLA" release verify r1.release
assert_contains "$ERR" "--trust PUBKEY is required"
assert_exit 2 "$FLOTILLA" release verify --trust "not-a-key" r1.release
assert_contains "$ERR" "public key 'not-a-key' is 9 characters long"
assert_exit 2 "$FLOTILLA" release build --dir migrations --project acme --sequence 1 --out x.release --trust "$pub"
assert_contains "$ERR" "--trust does not apply here"
assert_exit 2 "$FLOTILLA" release show --sequence 3 r1.release
assert_contains "$ERR" "--sequence does not apply here"
assert_exit 2 "$FLOTILLA" release sign r1.release
assert_exit 0 "$FLOTILLA" release --help
assert_contains "$OUT" "flotilla release verify"
assert_exit 3 "$FLOTILLA" release build --dir nowhere --project acme --sequence 1 --out x.release
[ ! -e x.release ] || fl_fail "a failed build wrote a file"
fl_pass
