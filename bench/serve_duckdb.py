"""The serving benchmark's peer: the same top-10s answered by DuckDB.

    serve_duckdb.py VIEWS

Reads the manifest, then for top-10 hashtags and top-10 tweets over the last
1 hour, 1 day and 30 days (ending at the boundary, as the server's `last`
does when the views cover everything) runs the SQL a user would write over
the batch Parquet, one query at a time in one connection, and prints a
Markdown table of queries/s and latency percentiles.
"""

import json
import statistics
import sys
import time

import duckdb

RUNS = 40


def main():
    views = sys.argv[1]
    manifest = json.load(open(f"{views}/manifest.json"))
    end = manifest["boundary_ms"]
    files = {name: f"{views}/{v['path']}" for name, v in manifest["views"].items()}
    con = duckdb.connect()
    # Tables in memory, as the server holds its views in memory.
    con.execute(f"CREATE TABLE hc AS SELECT epoch_ms(bucket_start) AS b, hashtag, count FROM '{files['hashtag_counts']}'")
    con.execute(f"CREATE TABLE ts AS SELECT epoch_ms(bucket_start) AS b, tweet_id, score FROM '{files['tweet_scores']}'")
    queries = {
        "hashtags": "SELECT hashtag, sum(count) AS c FROM hc WHERE b >= ? AND b < ? GROUP BY hashtag ORDER BY c DESC, hashtag LIMIT 10",
        "tweets": "SELECT tweet_id, sum(score) AS s FROM ts WHERE b >= ? AND b < ? GROUP BY tweet_id ORDER BY s DESC, CAST(tweet_id AS UBIGINT) LIMIT 10",
    }
    print("| query (DuckDB, in-memory tables of the same views) | queries/s | p50 | p99 |")
    print("|---|---:|---:|---:|")
    for what, sql in queries.items():
        for label, span in (("1h", 3600000), ("1d", 86400000), ("30d", 30 * 86400000)):
            times = []
            for _ in range(RUNS):
                start = time.perf_counter()
                con.execute(sql, [end - span, end]).fetchall()
                times.append(time.perf_counter() - start)
            times.sort()
            p50 = statistics.median(times) * 1000
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
            print(f"| top-10 {what}, last {label} | {1 / statistics.mean(times):.0f} | {p50:.2f}ms | {p99:.2f}ms |")


if __name__ == "__main__":
    main()
