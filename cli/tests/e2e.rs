//! End-to-end tests of the `tweetlambda` command against a real MariaDB
//! and a real Kafka-protocol broker (Tansu), both on 127.0.0.1, started by
//! `scripts/services.sh --profile test up` (which `scripts/test.sh` runs).

mod e2e {
    mod archive;
    mod batch;
    pub mod helpers;
    mod load;
    mod replay;
    mod serve;
    mod speed;
}
