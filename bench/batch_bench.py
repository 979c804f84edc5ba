"""Batch benchmark: master dataset -> views, tweetlambda vs DuckDB vs Spark.

    batch_bench.py TWEETLAMBDA MASTER WORKDIR

Runs, one after the other on the same Parquet files, each engine computing
the same views (tweets deduplicated by id; hashtag_counts per minute
and its hour and day rollups; tweet_scores per minute with retweets seen in
the stream) and writing them as Parquet. Each engine runs in its own
process; wall time is process start to exit, peak memory is the process's
resident memory, the process and its children together, sampled. Checks that the three agree on
row counts and sums, then prints a Markdown table.
"""

import glob
import json
import os
import subprocess
import sys
import time

PEERS = os.path.abspath(__file__)

# The same aggregates as batch-layer/src/views.rs, in SQL.
DUCKDB_SQL = r"""
CREATE TEMP TABLE t AS
SELECT DISTINCT ON (tweet_id)
  tweet_id, epoch_ms(created_at) // {b} * {b} AS bucket, text, hashtags, retweet_of,
  CASE WHEN retweet_count IS NULL AND favorite_count IS NULL THEN len(hashtags)
       ELSE least(greatest(coalesce(retweet_count, 0), 0), 1000000000000)
          + least(greatest(coalesce(favorite_count, 0), 0), 1000000000000)
  END AS score
FROM read_parquet({files});
CREATE TEMP TABLE hc AS
SELECT bucket, hashtag, count(*) AS count
FROM (SELECT bucket, unnest(hashtags) AS hashtag FROM t) GROUP BY ALL;
CREATE TEMP TABLE ts AS
SELECT bucket, tweet_id, sum(score) AS score, any_value(text) FILTER (WHERE text <> '') AS text
FROM (SELECT bucket, tweet_id, score, text FROM t
      UNION ALL
      SELECT bucket, retweet_of, 1, coalesce(regexp_extract(text, '^RT @.*?: (.*)$', 1), '')
      FROM t WHERE retweet_of IS NOT NULL)
GROUP BY ALL;
COPY (SELECT make_timestamp(bucket * 1000) AS bucket_start, hashtag, count FROM hc) TO '{out}/hashtag_counts.parquet';
COPY (SELECT make_timestamp(bucket * 1000) AS bucket_start, tweet_id, score, text FROM ts) TO '{out}/tweet_scores.parquet';
COPY (SELECT make_timestamp(bucket // 3600000 * 3600000000) AS bucket_start, hashtag, sum(count) AS count FROM hc GROUP BY ALL) TO '{out}/hashtag_counts_hour.parquet';
COPY (SELECT make_timestamp(bucket // 86400000 * 86400000000) AS bucket_start, hashtag, sum(count) AS count FROM hc GROUP BY ALL) TO '{out}/hashtag_counts_day.parquet';
"""


def run_duckdb(files, out):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    con.execute(DUCKDB_SQL.format(b=60000, files=json.dumps(files).replace('"', "'"), out=out))


def run_spark(files, out):
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master(f"local[{os.cpu_count()}]")
        .config("spark.driver.memory", "8g")
        .config("spark.sql.shuffle.partitions", str(os.cpu_count() * 4))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.time()
    t = (
        spark.read.parquet(*files)
        .dropDuplicates(["tweet_id"])
        .select(
            "tweet_id",
            (F.floor(F.unix_millis("created_at") / 60000) * 60000).alias("bucket"),
            "text",
            "hashtags",
            "retweet_of",
            F.when(
                F.col("retweet_count").isNull() & F.col("favorite_count").isNull(),
                F.size("hashtags"),
            )
            .otherwise(
                F.least(F.greatest(F.coalesce("retweet_count", F.lit(0)), F.lit(0)), F.lit(10**12))
                + F.least(F.greatest(F.coalesce("favorite_count", F.lit(0)), F.lit(0)), F.lit(10**12))
            )
            .cast("long")
            .alias("score"),
        )
        .cache()
    )
    hc = (
        t.select("bucket", F.explode("hashtags").alias("hashtag"))
        .groupBy("bucket", "hashtag")
        .agg(F.count(F.lit(1)).alias("count"))
        .cache()
    )
    own = t.select("bucket", "tweet_id", "score", "text")
    rts = t.where(F.col("retweet_of").isNotNull()).select(
        "bucket",
        F.col("retweet_of").alias("tweet_id"),
        F.lit(1).cast("long").alias("score"),
        F.regexp_extract("text", r"^RT @.*?: (.*)$", 1).alias("text"),
    )
    ts = (
        own.unionByName(rts)
        .groupBy("bucket", "tweet_id")
        .agg(F.sum("score").alias("score"), F.first(F.when(F.col("text") != "", F.col("text")), ignorenulls=True).alias("text"))
        .cache()
    )

    def ts_col(size):
        return F.timestamp_millis(F.floor(F.col("bucket") / size) * size).alias("bucket_start")

    hc.select(ts_col(60000), "hashtag", "count").write.mode("overwrite").parquet(f"{out}/hashtag_counts")
    ts.select(ts_col(60000), "tweet_id", "score", "text").write.mode("overwrite").parquet(f"{out}/tweet_scores")
    for name, size in (("hour", 3600000), ("day", 86400000)):
        hc.groupBy(ts_col(size), "hashtag").agg(F.sum("count").alias("count")).write.mode("overwrite").parquet(
            f"{out}/hashtag_counts_{name}"
        )
    print(f"spark: {time.time() - started:.1f} s after the session started", file=sys.stderr)
    spark.stop()


def tree_rss_mib(root):
    """Resident memory of a process and all its descendants, in MiB."""
    children = {}
    rss = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 2**20


def measure(cmd):
    """Wall seconds and peak resident memory (MiB, the process and its
    children together, sampled every 50 ms) of a command."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mib(proc.pid))
        time.sleep(0.05)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return wall, peak


def summary(path):
    """Rows and sum of the value column of each view under `path`."""
    import duckdb

    out = {}
    for name in ("hashtag_counts", "tweet_scores", "hashtag_counts_hour", "hashtag_counts_day"):
        matches = glob.glob(f"{path}/{name}.parquet") or glob.glob(f"{path}/{name}/*.parquet")
        value = "count" if name.startswith("hashtag") else "score"
        rows, total = duckdb.sql(f"SELECT count(*), sum({value}) FROM read_parquet({matches!r})").fetchall()[0]
        out[name] = (rows, int(total))
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] in ("duckdb", "spark"):
        files = json.loads(open(sys.argv[2]).read())
        (run_duckdb if sys.argv[1] == "duckdb" else run_spark)(files, sys.argv[3])
        return
    tl, master, work = sys.argv[1:4]
    files = sorted(glob.glob(f"{master}/date=*/*.parquet"))
    tweets = 0
    for c in glob.glob(f"{master}/_commits/*.json"):
        tweets += json.load(open(c))["rows"]
    with open(f"{work}/files.json", "w") as f:
        json.dump(files, f)
    results = []
    views = f"{work}/views"
    wall, peak = measure([tl, "batch", "--master", master, "--views", views, "--complete", "--force", "--keep", "1"])
    manifest = json.load(open(f"{views}/manifest.json"))
    ours = f"{views}/{manifest['directory']}"
    results.append(("tweetlambda batch (Polars)", wall, peak, summary(ours)))
    for engine, label in (("duckdb", "DuckDB"), ("spark", "Spark (pyspark, local)")):
        out = f"{work}/{engine}"
        os.makedirs(out, exist_ok=True)
        wall, peak = measure([sys.executable, PEERS, engine, f"{work}/files.json", out])
        results.append((label, wall, peak, summary(out)))
    reference = results[0][3]
    for label, _, _, s in results[1:]:
        if s != reference:
            sys.exit(f"{label} disagrees: {s} vs {reference}")
    print(f"{tweets} tweets in {len(files)} Parquet files "
          f"({sum(os.path.getsize(f) for f in files) / 2**20:.0f} MiB); all three agree on every view's "
          f"rows and sums ({reference['hashtag_counts'][0]} hashtag_counts rows, "
          f"{reference['tweet_scores'][0]} tweet_scores rows).")
    print()
    print("| engine | seconds | peak RSS MiB | vs tweetlambda |")
    print("|---|---:|---:|---:|")
    base = results[0][1]
    for label, wall, peak, _ in results:
        print(f"| {label} | {wall:.1f} | {peak:.0f} | {wall / base:.2f}× |")


if __name__ == "__main__":
    main()
