//! The idempotent producer and its delivery bookkeeping: every process that
//! writes to Kafka sends through it, and calls a flush (the delivery barrier)
//! before it commits the progress the messages stand for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

use crate::error::{Error, Result};
use crate::options::{KafkaOptions, Offsets};

/// Counts deliveries and remembers, per partition, the offset after the last
/// acknowledged message: the checkpoint's `offsets`.
#[derive(Default)]
pub struct Deliveries {
    next_offsets: Mutex<HashMap<(String, i32), i64>>,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Keep the messages whose delivery failed ([`Producer::keep_failed`]).
    keep_failed: AtomicBool,
    failed_messages: Mutex<Vec<FailedMessage>>,
}

/// A message the broker did not take, with why.
#[derive(Debug, Clone)]
pub struct FailedMessage {
    /// Its topic.
    pub topic: String,
    /// Its partition, as sent (`None`: chosen by key).
    pub partition: Option<i32>,
    /// Its key.
    pub key: Vec<u8>,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its timestamp (ms), when the delivery report has it (librdkafka's
    /// reports of failed deliveries do not: a re-send then takes the time
    /// it is sent).
    pub timestamp_ms: Option<i64>,
    /// The error.
    pub error: KafkaError,
}

impl FailedMessage {
    /// True for refusals that sending the same message again cannot
    /// change (too large, invalid, not authorised); others (a broker
    /// restarting, a timeout, no leader) may pass another time.
    pub fn is_permanent(&self) -> bool {
        use RDKafkaErrorCode as C;
        matches!(
            self.error.rdkafka_error_code(),
            Some(
                C::MessageSizeTooLarge
                    | C::InvalidMessageSize
                    | C::InvalidMessage
                    | C::InvalidRecord
                    | C::MessageBatchTooLarge
                    | C::TopicAuthorizationFailed
                    | C::ClusterAuthorizationFailed
                    | C::PolicyViolation
                    | C::InvalidTopic
            )
        )
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                if let Ok(mut offsets) = self.next_offsets.lock() {
                    let slot = offsets
                        .entry((m.topic().to_string(), m.partition()))
                        .or_insert(0);
                    *slot = (*slot).max(m.offset() + 1);
                }
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.to_string());
                }
                if self.keep_failed.load(Ordering::Relaxed) {
                    if let Ok(mut kept) = self.failed_messages.lock() {
                        kept.push(FailedMessage {
                            topic: m.topic().to_string(),
                            partition: Some(m.partition()).filter(|p| *p >= 0),
                            key: m.key().unwrap_or_default().to_vec(),
                            payload: m.payload().unwrap_or_default().to_vec(),
                            timestamp_ms: m.timestamp().to_millis(),
                            error: e.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// A producer with `acks=all` and idempotence on, so that librdkafka's
/// retries never duplicate or reorder messages within a partition.
pub struct Producer {
    inner: Arc<ThreadedProducer<Deliveries>>,
}

impl Producer {
    /// Creates the producer. Pass-through properties override the defaults.
    pub fn new(kafka: &KafkaOptions) -> Result<Producer> {
        let mut config = kafka.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The Java client's partitioner, so that other clients agree on
            // which partition a key lands in.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576");
        kafka.apply_properties(&mut config);
        let inner = config
            .create_with_context(Deliveries::default())
            .map_err(Error::kafka("create the producer"))?;
        Ok(Producer {
            inner: Arc::new(inner),
        })
    }

    /// From now on, messages whose delivery fails are kept, to be taken
    /// by [`Producer::take_failed`] (and sent again, say).
    pub fn keep_failed(&self) {
        self.inner
            .context()
            .keep_failed
            .store(true, Ordering::Relaxed);
    }

    /// The messages whose delivery failed since the last call (kept only
    /// after [`Producer::keep_failed`]).
    pub fn take_failed(&self) -> Vec<FailedMessage> {
        self.inner
            .context()
            .failed_messages
            .lock()
            .map(|mut kept| std::mem::take(&mut *kept))
            .unwrap_or_default()
    }

    /// Queues a failed message again, to the partition it went to (so
    /// that its order with the messages of that partition keeps).
    pub fn resend_blocking(&self, m: &FailedMessage) -> Result<()> {
        let mut record = BaseRecord::to(m.topic.as_str())
            .key(&m.key[..])
            .payload(&m.payload[..]);
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(t) = m.timestamp_ms {
            record = record.timestamp(t);
        }
        self.queue_blocking(record)
    }

    /// Queues one message; waits while librdkafka's queue is full.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        timestamp_ms: i64,
    ) -> Result<()> {
        let mut record = BaseRecord::to(topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(Error::kafka(format!("queue a message for {topic}"))(e)),
            }
        }
    }

    /// Like [`Producer::send`], for code running on its own thread.
    pub fn send_blocking(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        timestamp_ms: i64,
    ) -> Result<()> {
        let record = BaseRecord::to(topic)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
        self.queue_blocking(record)
    }

    /// Like [`Producer::send_blocking`], to a given partition.
    pub fn send_to_partition(
        &self,
        topic: &str,
        partition: i32,
        key: &str,
        payload: &[u8],
        timestamp_ms: i64,
    ) -> Result<()> {
        let record = BaseRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(payload)
            .timestamp(timestamp_ms);
        self.queue_blocking(record)
    }

    /// Queues a tombstone (a record with a key and no value) of `key`: it
    /// lands in the key's partition, and compaction then drops the key.
    pub fn send_tombstone_blocking(&self, topic: &str, key: &str) -> Result<()> {
        self.queue_blocking(BaseRecord::<str, [u8]>::to(topic).key(key))
    }

    /// Queues a record, sleeping while librdkafka's queue is full.
    fn queue_blocking<K: rdkafka::message::ToBytes + ?Sized>(
        &self,
        mut record: BaseRecord<'_, K, [u8]>,
    ) -> Result<()> {
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, r)) => {
                    return Err(Error::kafka(format!("queue a message for {}", r.topic))(e))
                }
            }
        }
    }

    /// Like [`Producer::flush`], for code running on its own thread.
    ///
    /// Waits on the count of messages in flight (the producer's own thread
    /// serves the delivery reports) rather than on librdkafka's flush, which
    /// measured here waits in steps of about 100 ms when another thread polls.
    pub fn flush_blocking(&self) -> Result<Offsets> {
        self.flush_within(Duration::from_secs(600))
    }

    /// [`Producer::flush_blocking`], failing once `limit` has passed with
    /// messages still in flight.
    pub fn flush_within(&self, limit: Duration) -> Result<Offsets> {
        let started = std::time::Instant::now();
        let deadline = started + limit;
        let mut next_report = started + Duration::from_secs(10);
        while self.inner.in_flight_count() > 0 {
            let now = std::time::Instant::now();
            if now > deadline {
                return Err(Error::Delivery {
                    count: u64::try_from(self.inner.in_flight_count()).unwrap_or(0),
                    last: format!("not acknowledged within {} s", limit.as_secs()),
                });
            }
            if now > next_report {
                tracing::warn!(
                    in_flight = self.inner.in_flight_count(),
                    waited_s = started.elapsed().as_secs(),
                    "waiting for the broker to acknowledge messages"
                );
                next_report = now + Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        self.delivery_result()
    }

    /// The failures since the previous barrier (then forgotten: a failure
    /// fails one barrier, not every later one), else the offsets reached.
    fn delivery_result(&self) -> Result<Offsets> {
        let ctx = self.inner.context();
        let failed = ctx.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let last = ctx
                .last_error
                .lock()
                .ok()
                .and_then(|mut l| l.take())
                .unwrap_or_default();
            return Err(Error::Delivery {
                count: failed,
                last,
            });
        }
        Ok(ctx
            .next_offsets
            .lock()
            .map(|o| {
                o.iter()
                    .map(|((t, p), n)| (format!("{t}:{p}"), *n))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until every queued message is acknowledged, then returns the
    /// partition end offsets seen so far. Fails if any message was lost.
    pub async fn flush(&self) -> Result<Offsets> {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(600)))
            .await
            .map_err(|e| Error::Timeout(format!("flush task failed: {e}")))?
            .map_err(Error::kafka("flush the producer"))?;
        self.delivery_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

    /// librdkafka's mock cluster: a broker answering "unknown error" (as a
    /// restarting Tansu does) fails the delivery; the message is kept, and
    /// sent again once the broker answers, to the same partition.
    #[test]
    fn failed_messages_are_kept_and_can_be_sent_again() {
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic("t", 3, 1).expect("topic");
        let producer = Producer::new(&KafkaOptions {
            brokers: mock.bootstrap_servers(),
            properties: vec![("message.timeout.ms".into(), "5000".into())],
        })
        .expect("producer");
        producer.keep_failed();
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN],
        );
        producer
            .send_blocking("t", "key", b"payload", 42)
            .expect("queued");
        assert!(producer.flush_blocking().is_err());
        let failed = producer.take_failed();
        assert_eq!(failed.len(), 1);
        let m = &failed[0];
        assert_eq!(
            (m.topic.as_str(), &m.key[..], &m.payload[..]),
            ("t", &b"key"[..], &b"payload"[..])
        );
        assert!(!m.is_permanent(), "{:?}", m.error);
        assert!(producer.take_failed().is_empty(), "taken once");

        mock.clear_request_errors(RDKafkaApiKey::Produce);
        producer.resend_blocking(m).expect("queued again");
        let offsets = producer.flush_blocking().expect("delivered");
        let partition = m.partition.expect("the partition it went to");
        assert_eq!(offsets.get(&format!("t:{partition}")), Some(&1));

        // A refusal for good is told apart.
        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
        );
        producer
            .send_blocking("t", "key", b"bad", 0)
            .expect("queued");
        assert!(producer.flush_blocking().is_err());
        let failed = producer.take_failed();
        assert!(failed.len() == 1 && failed[0].is_permanent(), "{failed:?}");
    }

    /// librdkafka's mock cluster: a delivery refused by the broker with an
    /// error that is not retried.
    #[test]
    fn a_failed_delivery_fails_its_flush_and_not_every_later_one() {
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic("t", 1, 1).expect("topic");
        let producer = Producer::new(&KafkaOptions {
            brokers: mock.bootstrap_servers(),
            properties: vec![("message.timeout.ms".into(), "5000".into())],
        })
        .expect("producer");
        producer
            .send_blocking("t", "k", b"first", 0)
            .expect("queued");
        producer.flush_blocking().expect("delivered");

        mock.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
        );
        producer
            .send_blocking("t", "k", b"refused", 0)
            .expect("queued");
        let err = producer
            .flush_blocking()
            .expect_err("the refused message fails its flush");
        assert!(matches!(err, Error::Delivery { count: 1, .. }), "{err}");

        mock.clear_request_errors(RDKafkaApiKey::Produce);
        producer
            .send_blocking("t", "k", b"third", 0)
            .expect("queued");
        let offsets = producer
            .flush_blocking()
            .expect("a later flush reports only its own messages");
        assert_eq!(
            offsets.get("t:0"),
            Some(&2),
            "the refused one took no offset: {offsets:?}"
        );
    }
}
