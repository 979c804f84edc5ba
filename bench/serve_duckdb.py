"""The serving benchmark's peer: the same top-10s answered by DuckDB.

    serve_duckdb.py VIEWS CONCURRENCY SECONDS

Reads the manifest, then for top-10 hashtags and top-10 tweets over the last
1 hour, 1 day and 30 days (ending at the boundary, as the server's `last`
does when the views cover everything) runs the SQL a user would write over
the batch Parquet from CONCURRENCY threads at once (one cursor each, as wrk
keeps CONCURRENCY connections busy), each line for SECONDS seconds and at
least 20 queries, and prints Markdown table rows of queries/s and latency
percentiles.
"""

import json
import os
import statistics
import sys
import threading
import time

import duckdb

MIN_QUERIES = 20


def main():
    views = sys.argv[1]
    manifest = json.load(open(f"{views}/manifest.json"))
    end = manifest["boundary_ms"]
    # A view is a directory of per-date files (format 2) or one file.
    files = {
        name: f"{views}/{v['path']}/*.parquet" if os.path.isdir(f"{views}/{v['path']}") else f"{views}/{v['path']}"
        for name, v in manifest["views"].items()
    }
    con = duckdb.connect()
    # Tables in memory, as the server holds its views in memory.
    con.execute(f"CREATE TABLE hc AS SELECT epoch_ms(bucket_start) AS b, hashtag, count FROM '{files['hashtag_counts']}'")
    con.execute(f"CREATE TABLE ts AS SELECT epoch_ms(bucket_start) AS b, tweet_id, score FROM '{files['tweet_scores']}'")
    queries = {
        "hashtags": "SELECT hashtag, sum(count) AS c FROM hc WHERE b >= ? AND b < ? GROUP BY hashtag ORDER BY c DESC, hashtag LIMIT 10",
        "tweets": "SELECT tweet_id, sum(score) AS s FROM ts WHERE b >= ? AND b < ? GROUP BY tweet_id ORDER BY s DESC, CAST(tweet_id AS UBIGINT) LIMIT 10",
    }
    concurrency = int(sys.argv[2])
    seconds = float(sys.argv[3])
    for what, sql in queries.items():
        for label, span in (("1h", 3600000), ("1d", 86400000), ("30d", 30 * 86400000)):
            times = []
            lock = threading.Lock()
            start_all = time.perf_counter()

            def worker():
                cur = con.cursor()
                while True:
                    start = time.perf_counter()
                    with lock:
                        if start - start_all > seconds and len(times) >= MIN_QUERIES:
                            return
                    cur.execute(sql, [end - span, end]).fetchall()
                    took = time.perf_counter() - start
                    with lock:
                        times.append(took)

            threads = [threading.Thread(target=worker) for _ in range(concurrency)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start_all
            times.sort()
            p50 = statistics.median(times) * 1000
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
            print(f"| DuckDB | {concurrency} | top-10 {what}, last {label} | {len(times) / elapsed:.0f} | {p50:.2f}ms | {p99:.2f}ms | |")


if __name__ == "__main__":
    main()
