-- Replay checkpoints: how far a named replay has published, so that a replay
-- stopped (Ctrl-C, kill, crash) and started again publishes the rest only.
-- `position_*` is the (event_time_ms, tweet_id) of the last tweet whose
-- messages the broker acknowledged; `offsets` is a JSON object of the topic
-- partition end offsets at that moment, from which a restart reads the tail
-- that was published after the checkpoint, so that nothing is sent twice.

CREATE TABLE IF NOT EXISTS `replay_checkpoints` (
  `name` varchar(100) NOT NULL,
  -- JSON: topics, range and brokers this checkpoint belongs to
  `settings` text NOT NULL,
  -- 'dead_letters', 'tweets' or 'done'
  `phase` varchar(16) NOT NULL,
  `position_ms` bigint(20) DEFAULT NULL,
  `position_tweet_id` bigint(20) DEFAULT NULL,
  `offsets` text NOT NULL,
  `rows_read` bigint(20) NOT NULL DEFAULT 0,
  `updated_at` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
