#!/usr/bin/env bash
# Regenerates the bundled demo data of data/ (see data/README.md) from the
# full tweet data: a directory laid out like ../shared/data, named by
# TWEETLAMBDA_SHARED_DATA (default: ../shared/data next to the repository).
#
#   data/make-samples.sh            # rewrites the files of data/
#   data/make-samples.sh OUT_DIR    # writes them into OUT_DIR instead
#   data/make-samples.sh --check    # regenerates into a temporary directory
#                                   # and compares byte for byte with data/
#
# Nothing is edited: every bundled record is a verbatim copy (byte for byte)
# of a record of the full files; only the selection and gzip are ours.
# Output is reproducible: the selection rules are fixed, gzip runs with -9n
# (no name, no timestamp). Needs bash, python3 and gzip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
SRC="${TWEETLAMBDA_SHARED_DATA:-$(cd "$repo/.." && pwd)/shared/data}"

check=false
if [[ "${1:-}" == "--check" ]]; then
  check=true
  shift
fi
OUT="${1:-$here}"
if $check; then
  OUT="$(mktemp -d)"
  trap 'rm -rf "$OUT"' EXIT
fi

for f in tweet_hashtags_db.sql twitter_api_v1_sample.jsonl gop_debate_2015.csv twitter_api_v2/manifest.json; do
  [[ -f "$SRC/$f" ]] || { echo "make-samples: $SRC/$f not found (set TWEETLAMBDA_SHARED_DATA)" >&2; exit 1; }
done
mkdir -p "$OUT"

# 1. The seed dump, whole.
gzip -9n <"$SRC/tweet_hashtags_db.sql" >"$OUT/tweet_hashtags_db.sql.gz"

# 2. An excerpt of the API v1.1 JSONL: lines kept whole and in file order.
#    Kept: every line with `coordinates` or `place` or a top-level
#    `extended_tweet`; of the other lines, every 6th retweet (1st, 7th, …
#    line with `retweeted_status`) and every 25th remaining line (1st, 26th, …).
# 3. An excerpt of the CSV export: the header, the first 150 records and
#    every 50th record after (the 200th, 250th, …); records are CSV records
#    (some span several lines), copied with their original line endings.
python3 - "$SRC" "$OUT" <<'PY'
import csv, json, sys
src, out = sys.argv[1], sys.argv[2]

with open(f"{src}/twitter_api_v1_sample.jsonl", "rb") as f:
    lines = f.read().split(b"\n")
if lines and lines[-1] == b"":
    lines.pop()
kept, retweets, others = [], 0, 0
for line in lines:
    v = json.loads(line)
    if v.get("coordinates") or v.get("place") or v.get("extended_tweet"):
        kept.append(line)
    elif v.get("retweeted_status"):
        retweets += 1
        if retweets % 6 == 1:
            kept.append(line)
    else:
        others += 1
        if others % 25 == 1:
            kept.append(line)
with open(f"{out}/twitter_api_v1_excerpt.jsonl", "wb") as f:
    f.write(b"\n".join(kept) + b"\n")

raw = []
with open(f"{src}/gop_debate_2015.csv", newline="", encoding="utf-8") as f:
    def consumed():
        for line in f:
            raw.append(line)
            yield line
    reader = csv.reader(consumed())
    next(reader)
    text = "".join(raw)
    raw.clear()
    for n, _record in enumerate(reader, 1):
        if n <= 150 or n % 50 == 0:
            text += "".join(raw)
        raw.clear()
with open(f"{out}/gop_debate_2015_excerpt.csv", "w", newline="", encoding="utf-8") as f:
    f.write(text)
PY
gzip -9nf "$OUT/twitter_api_v1_excerpt.jsonl"

# 4. X API v2: the 5-page next_token chain (bodies gzipped, headers as
#    they are), both recorded request-level error bodies, and the
#    filtered-stream files (the raw CRLF capture with its keep-alive line,
#    the stream objects, the in-stream error); plus the manifest entries of
#    exactly these files.
v2="twitter_api_v2"
rm -rf "${OUT:?}/$v2"
for p in 1 2 3 4 5; do
  d="search_recent/recent_blacklivesmatter_chain"
  mkdir -p "$OUT/$v2/$d"
  gzip -9n <"$SRC/$v2/$d/page-00$p.json" >"$OUT/$v2/$d/page-00$p.json.gz"
  cp "$SRC/$v2/$d/page-00$p.headers.json" "$OUT/$v2/$d/"
done
for d in search_recent/errors/all_400_start-after-end search_recent/errors/all_401_unauthorized; do
  mkdir -p "$OUT/$v2/$d"
  cp "$SRC/$v2/$d/page-001.json" "$SRC/$v2/$d/page-001.headers.json" "$OUT/$v2/$d/"
done
mkdir -p "$OUT/$v2/stream"
cp "$SRC/$v2/stream/stream_raw_twittered.data" "$SRC/$v2/stream/stream.jsonl" \
  "$SRC/$v2/stream/stream_errors.jsonl" "$OUT/$v2/stream/"
python3 - "$SRC/$v2/manifest.json" "$OUT/$v2" <<'PY'
import json, os, sys
manifest, out = sys.argv[1], sys.argv[2]
with open(manifest, encoding="utf-8") as f:
    m = json.load(f)
responses = []
for r in m["responses"]:
    for name in (r["file"], r["file"] + ".gz"):
        if os.path.exists(os.path.join(out, name)):
            responses.append(dict(r, bundled_file=name))
stream = {k: m["stream"][k] for k in ("lines", "raw_capture", "errors")}
subset = {
    "note": "entries of ../shared/data/twitter_api_v2/manifest.json for the files bundled here; "
    "bundled_file is the file in this directory (bodies over 100 KB are gzipped with gzip -9n)",
    "responses": responses,
    "stream": stream,
}
with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
    json.dump(subset, f, indent=1, ensure_ascii=False)
    f.write("\n")
PY

if $check; then
  status=0
  while IFS= read -r -d '' f; do
    rel="${f#"$OUT"/}"
    if ! cmp -s "$f" "$here/$rel"; then
      echo "differs or missing: data/$rel" >&2
      status=1
    fi
  done < <(find "$OUT" -type f -print0 | sort -z)
  [[ $status == 0 ]] && echo "make-samples --check: data/ matches a fresh regeneration from $SRC"
  exit $status
fi
(cd "$OUT" && find . -type f ! -name README.md ! -name make-samples.sh ! -name .gitattributes -printf '%8s  %P\n' | sort -k2)
