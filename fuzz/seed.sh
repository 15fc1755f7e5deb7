#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the RDB files in testdata/rdb (not committed: the
# corpus directory is git-ignored). Safe to run again: existing seeds are overwritten,
# whatever the fuzzer added is kept.
#
#   decode:           <selector byte> + the whole file. Selector 0x00 = whole input,
#                     small limits; 0x87 = 7-byte pieces, default limits.
#   decode_prefixed:  <selector byte> + the file without its 9-byte header. The selector
#                     picks the header closest to the file's own (see harness.rs:
#                     bits 0-3 = header index, bits 4-6 = piece size, bit 7 = defaults).
#   replies:          <piece-size byte> + a few reply streams (see the end).
#   command_stream:   <selector byte> + the command-stream part of each recorded
#                     replication transcript in testdata/replication (the byte range its
#                     notes.txt labels "command stream").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="$here/corpus"
mkdir -p "$out/decode" "$out/decode_prefixed"

n=0
while IFS= read -r -d '' f; do
    rel="${f#"$root"/testdata/rdb/}"
    name="seed-$(printf '%s' "$rel" | tr '/.' '__')"
    { printf '\x00'; cat "$f"; } > "$out/decode/$name-whole"
    { printf '\x87'; cat "$f"; } > "$out/decode/$name-p7"

    magic="$(head -c 9 "$f")"
    case "$magic" in
        VALKEY*) idx=4 ;;
        REDIS00[0-9][0-9])
            v=$((10#${magic:5:4}))
            if   [ "$v" -le 6 ];  then idx=0
            elif [ "$v" -le 9 ];  then idx=1
            elif [ "$v" -le 11 ]; then idx=2
            else idx=3; fi ;;
        *) continue ;;
    esac
    { printf '%b' "\\x0$idx"; tail -c +10 "$f"; } > "$out/decode_prefixed/$name"
    n=$((n + 1))
done < <(find "$root/testdata/rdb" -name '*.rdb' -type f -print0 | sort -z)

echo "seeded $n RDB files into $out/decode and $out/decode_prefixed"

mkdir -p "$out/command_stream"
python3 - "$root/testdata/replication" "$out/command_stream" <<'PY'
import pathlib, re, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
n = 0
for notes in sorted(src.glob("*/notes.txt")):
    for section in notes.read_text().split("\n== ")[1:]:
        name = section.split(":", 1)[0].strip()
        m = re.search(r"\[\s*(\d+) \.\.\s*(\d+)\)\s+command stream", section)
        if not m:
            continue
        data = (notes.parent / name).read_bytes()[int(m[1]):int(m[2])]
        for sel in (0, 7):
            (out / f"seed-{notes.parent.name}-{name}-{sel}").write_bytes(bytes([sel]) + data)
        n += 1
print(f"seeded {n} command streams into {out}")
PY

# replies: <piece-size byte> + replies a server sends: statuses, errors, integers,
# bulks (empty, nil, binary), arrays (empty, nil, nested as EXEC and XRANGE answer).
mkdir -p "$out/replies"
printf '\x05+OK\r\n-ERR wrong\r\n:42\r\n$3\r\nfoo\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n' > "$out/replies/seed-simple"
printf '\x03*3\r\n+OK\r\n-WRONGTYPE Operation against a key\r\n:1\r\n' > "$out/replies/seed-exec"
printf '\x01*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n' > "$out/replies/seed-xrange"
printf '\x07*2\r\n$1\r\n0\r\n*2\r\n$4\r\n\x00\xff\r\n\r\n$1\r\nk\r\n' > "$out/replies/seed-scan"
echo "seeded 4 reply streams into $out/replies"
