-- Extension of the seed schema, as a side table so that the seed tables stay
-- exactly as the dump made them: one row per tweet with its parsed event time
-- and, for richer sources, the fields the seed dump lacks. Every column but
-- tweet_id is nullable.
--
-- `tweetlambda load` writes a row for every tweet it loads. For tweets that
-- came from a dump (no row yet), `tweetlambda replay` parses tweets.date_time
-- once and writes the row, so that replay can stream in event-time order
-- through the (event_time_ms, tweet_id) index instead of sorting the table.

CREATE TABLE IF NOT EXISTS `tweet_meta` (
  `tweet_id` bigint(20) NOT NULL,
  -- creation time in milliseconds since the Unix epoch, UTC;
  -- NULL when tweets.date_time could not be parsed (see time_error)
  `event_time_ms` bigint(20) DEFAULT NULL,
  -- why tweets.date_time could not be parsed; such tweets are dead-lettered
  `time_error` varchar(255) DEFAULT NULL,
  -- the tweets.date_time text the event time was parsed from
  `date_time_parsed` varchar(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  -- where the row came from: seed, v1, v2, csv, synthetic
  `source` varchar(16) DEFAULT NULL,
  `user_id` bigint(20) DEFAULT NULL,
  `user_screen_name` varchar(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  `retweet_count` bigint(20) DEFAULT NULL,
  `favorite_count` bigint(20) DEFAULT NULL,
  -- for a retweet: the retweeted tweet; for a quote: the quoted tweet
  `retweet_of_id` bigint(20) DEFAULT NULL,
  `quote_of_id` bigint(20) DEFAULT NULL,
  `lat` double DEFAULT NULL,
  `lon` double DEFAULT NULL,
  `place_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  `country_code` varchar(8) DEFAULT NULL,
  PRIMARY KEY (`tweet_id`),
  KEY `event_time` (`event_time_ms`, `tweet_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
