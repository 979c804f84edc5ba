//! Where the brokers are and how to talk to them.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Where the brokers are and any librdkafka settings to pass through
/// (`security.protocol`, `sasl.mechanism`, `sasl.username`, `ssl.ca.location`, …).
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Bootstrap servers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// librdkafka properties, applied last so that they override defaults.
    pub properties: Vec<(String, String)>,
}

impl KafkaOptions {
    /// A librdkafka configuration with the brokers and pass-through settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        self.apply_properties(&mut config);
        config
    }

    /// Sets the pass-through properties on `config`, over whatever defaults
    /// a client set after [`KafkaOptions::client_config`]: the user's
    /// settings always win.
    pub fn apply_properties(&self, config: &mut ClientConfig) {
        for (k, v) in &self.properties {
            config.set(k, v);
        }
    }
}

/// Partition offsets of topics, keyed `topic:partition`.
pub type Offsets = BTreeMap<String, i64>;

/// Raises each partition's offset in `offsets` to the one in `newer` where
/// that is larger (a checkpoint taking the offsets after a flush).
pub fn advance_offsets(offsets: &mut Offsets, newer: Offsets) {
    for (k, v) in newer {
        let slot = offsets.entry(k).or_insert(v);
        *slot = (*slot).max(v);
    }
}

/// Splits a `topic:partition` key.
pub fn split_key(key: &str) -> Option<(&str, i32)> {
    let (topic, partition) = key.rsplit_once(':')?;
    Some((topic, partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn offset_keys_split_at_the_last_colon() {
        assert_eq!(super::split_key("a:b:3"), Some(("a:b", 3)));
        assert_eq!(super::split_key("tweets"), None);
        assert_eq!(super::split_key("tweets:x"), None);
    }

    #[test]
    fn offsets_only_move_forward() {
        let mut o = super::Offsets::from([("t:0".to_string(), 5), ("t:1".to_string(), 9)]);
        super::advance_offsets(
            &mut o,
            super::Offsets::from([
                ("t:0".to_string(), 7),
                ("t:1".to_string(), 3),
                ("t:2".to_string(), 1),
            ]),
        );
        assert_eq!(
            o,
            super::Offsets::from([
                ("t:0".to_string(), 7),
                ("t:1".to_string(), 9),
                ("t:2".to_string(), 1)
            ])
        );
    }
}
