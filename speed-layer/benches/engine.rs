//! The aggregation engine in-process, no broker: hashtag events per second
//! on one core, and the memory it holds for a given retention.
//!
//! `cargo bench -p tweetlambda-speed --bench engine -- [EVENTS] [RATE] [EVENTS_PER_TICK]`
//! prints one line of `key=value` figures; `bench/speed.sh` records them.
//! Events: Zipf-distributed hashtags (50,000 tags, exponent 1.1) on tweets
//! arriving at RATE tweets/s of event time (default 5,000), 1–3 hashtags a
//! tweet; windows 1m, 5m, 15m, 1h; the engine ticks every EVENTS_PER_TICK
//! events (default 100,000: ten emit intervals a second at 1M events/s),
//! publishing updates, finals and the view.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tweetlambda_speed::engine::{Engine, Event, Input};
use tweetlambda_speed::WindowSpec;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = *args.first().unwrap_or(&5_000_000);
    let rate = *args.get(1).unwrap_or(&5_000);
    let per_tick = (*args.get(2).unwrap_or(&100_000)).max(1) as usize;
    let tags: Vec<String> = (0..50_000).map(|i| format!("tag{i}")).collect();
    let zipf = Zipf::new(tags.len() as u64, 1.1).expect("valid Zipf");
    let mut rng = StdRng::seed_from_u64(7);
    // (tweet id, event time ms, tag index)
    let mut input: Vec<(u64, i64, usize)> = Vec::with_capacity(events as usize);
    let start_ms = 1_630_281_087_000i64;
    let mut id = 1u64;
    while (input.len() as u64) < events {
        let t = start_ms + (id as i64 * 1000) / rate as i64;
        for _ in 0..rng.gen_range(1..=3) {
            input.push((id, t, zipf.sample(&mut rng) as usize - 1));
        }
        id += 1;
    }
    input.truncate(events as usize);
    let windows = ["1m", "5m", "15m", "1h"]
        .iter()
        .map(|w| WindowSpec::parse(w).expect("window"))
        .collect();
    let mut engine = Engine::new(60_000, windows, 5_000, 10, Duration::from_secs(3600));
    engine.assign(&[(Input::Hashtags, 0)], Instant::now());
    let rss_before = rss_kib();
    let now = Instant::now();
    let started = Instant::now();
    let mut outputs = 0usize;
    let mut tick_time = Duration::ZERO;
    for (i, (tweet_id, t_ms, tag)) in input.iter().enumerate() {
        engine.apply(
            (Input::Hashtags, 0),
            Event::Hashtag {
                tweet_id: *tweet_id,
                t_ms: *t_ms,
                hashtag: &tags[*tag],
            },
            now,
        );
        if i % per_tick == per_tick - 1 {
            let t0 = Instant::now();
            let out = engine.tick(now);
            tick_time += t0.elapsed();
            outputs += out.tops.len() + out.view.len();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let span_min = (input.last().map_or(0, |e| e.1) - start_ms) as f64 / 60_000.0;
    println!(
        "engine events={events} events_per_tick={per_tick} seconds={elapsed:.3} events_per_sec={:.0} ticks_seconds={:.3} event_time_span_min={span_min:.0} buckets_held={} rss_growth_mib={:.1} outputs={outputs}",
        events as f64 / elapsed,
        tick_time.as_secs_f64(),
        engine.buckets_held(),
        (rss_kib().saturating_sub(rss_before)) as f64 / 1024.0
    );
}
