# Sourced by the benchmark scripts: the share of CPU time the hypervisor
# took from this machine (steal, from /proc/stat) between `steal_start` and
# `steal_percent`. On a shared VM it slows every engine of a run alike, and
# it is why two runs on machines of the same kind can differ.
steal_start() {
  STEAL_AT_START=$(awk '/^cpu / {print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
}
steal_percent() {
  awk -v start="$STEAL_AT_START" '/^cpu / {
    split(start, s, " ")
    total = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 - s[2]
    printf "%.0f", (total > 0 ? 100 * ($9 - s[1]) / total : 0)
  }' /proc/stat
}
