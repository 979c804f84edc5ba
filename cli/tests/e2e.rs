//! End-to-end tests of the `tweetlambda` command against a real MariaDB,
//! a real Kafka-protocol broker (Tansu) and a real Elasticsearch-API server
//! (noida-db), all on 127.0.0.1, started by
//! `scripts/services.sh --profile test up` (which `scripts/test.sh` runs).
//! The X API and Kibana are stand-ins written in the tests themselves.

mod e2e {
    mod archive;
    mod batch;
    pub mod helpers;
    mod index;
    mod load;
    mod replay;
    mod serve;
    mod speed;
    mod x;
}
