#!/usr/bin/env bash
# Benchmark: the batch job incremental by date, and its time and memory as
# the master dataset grows.
#
#   bench/batch_days.sh [MILLIONS_PER_DAY] [DAYS...]     (default 1, days 10 30 100)
#
# 1. Incremental: a master dataset of 30 days × MILLIONS_PER_DAY million
#    synthetic tweets is published once; one more day is archived (new ids,
#    the day after); then the run that adds it (`batch --complete`) is
#    timed against a full recompute of the same input (`--force`).
# 2. Growth: for each DAYS, a dataset of DAYS × MILLIONS_PER_DAY million
#    tweets, one full run (`--force`), its wall time and peak RSS.
#
# Writes the figures to BENCHMARKS.md between the `batch-days` markers.
# Disk: about 35 MiB per million tweets for each dataset, plus its views.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/steal.sh
source bench/steal.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tweetlambda/target}"
TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
PER_DAY_M="${1:-1}"
shift || true
GROWTH_DAYS=("${@:-10 30 100}")
# shellcheck disable=SC2206
GROWTH_DAYS=(${GROWTH_DAYS[*]})
PER_DAY=$((PER_DAY_M * 1000000))
RATE=$(python3 -c "print($PER_DAY / 86400)")
WORK="$TL_HOME/bench/days"
mkdir -p "$WORK"

cargo build --release --locked -p tweetlambda >&2
TL="$CARGO_TARGET_DIR/release/tweetlambda"

# A master dataset of DAYS days from 2021-08-01 (kept between runs).
dataset() {
  local days=$1
  local master="$WORK/master-${days}d-${PER_DAY_M}m"
  if [[ ! -f "$master/.complete" ]]; then
    rm -rf "$master"
    "$TL" generate --master "$master" --tweets $((days * PER_DAY)) --rate "$RATE" \
      --start 2021-08-01T00:00:00Z >&2
    touch "$master/.complete"
  fi
  echo "$master"
}

# Runs `tweetlambda batch` and prints "seconds peak_rss_mib computed carried".
batch() {
  local master=$1
  local views=$2
  shift 2
  local out
  out=$( { /usr/bin/time -f "TIME %e %M" "$TL" batch --master "$master" --views "$views" --complete --keep 2 "$@" >"$WORK/batch.out"; } 2>&1 )
  local t rss
  read -r t rss < <(awk '/^TIME/ {print $2, int($3 / 1024)}' <<<"$out")
  local computed carried
  computed=$(sed -n 's/.* \([0-9]*\) dates computed.*/\1/p' "$WORK/batch.out")
  carried=$(sed -n 's/.* \([0-9]*\) carried over.*/\1/p' "$WORK/batch.out")
  echo "$t $rss $computed $carried"
}

steal_start
# 1. Incremental.
base=$(dataset 30)
inc="$WORK/master-31d-inc"
# Hard links: the files are immutable, and the new day adds files of its own.
rm -rf "$inc" && cp -al "$base" "$inc" && rm -f "$inc/.complete"
views="$WORK/views-inc"
rm -rf "$views"
read -r first_s first_rss first_c _ < <(batch "$inc" "$views")
"$TL" generate --master "$inc" --tweets "$PER_DAY" --rate "$RATE" --start 2021-08-31T00:00:00Z \
  --first-id $((30 * PER_DAY + 1)) --seed 43 >&2
read -r inc_s inc_rss inc_c inc_k < <(batch "$inc" "$views")
read -r full_s full_rss full_c full_k < <(batch "$inc" "$views" --force)
ratio=$(python3 -c "print(f'{$inc_s / $full_s:.3f}')")

# 2. Growth.
growth=()
for days in "${GROWTH_DAYS[@]}"; do
  master=$(dataset "$days")
  gviews="$WORK/views-growth"
  rm -rf "$gviews"
  read -r s rss c _ < <(batch "$master" "$gviews" --force)
  per_m=$(python3 -c "print(f'{$s / ($days * $PER_DAY_M):.2f}')")
  growth+=("| $((days * PER_DAY_M))M | $days | $c | $s | $per_m | $rss |")
  rm -rf "$gviews"
done
rm -rf "$views"

table=$(
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, by \`bench/batch_days.sh $PER_DAY_M ${GROWTH_DAYS[*]}\` (CPU steal by the hypervisor during the run: $(steal_percent)%)."
  echo "Synthetic tweets (\`tweetlambda generate --master\`) at $PER_DAY_M million per day of event time from 2021-08-01;"
  echo "wall time and peak RSS of \`tweetlambda batch --complete\` (release build) by \`/usr/bin/time\`."
  echo
  echo "**Incremental:** 30 days published, then one more day archived."
  echo
  echo "| run | dates computed | dates carried over | seconds | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|"
  echo "| first run, 30 days | $first_c | 0 | $first_s | $first_rss |"
  echo "| one more day (incremental) | $inc_c | $inc_k | $inc_s | $inc_rss |"
  echo "| the same input, full recompute (\`--force\`) | $full_c | $full_k | $full_s | $full_rss |"
  echo
  echo "Incremental / full: **$ratio** (target ≤ 0.1)."
  echo
  echo "**Growth:** one full run (\`--force\`) per dataset."
  echo
  echo "| tweets | days | dates computed | seconds | seconds per million | peak RSS MiB |"
  echo "|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${growth[@]}"
)
python3 bench/section.py batch-days "Batch: incremental by date, and growth" "$table"
echo "$table"
