-- The seed schema: the three tables of the original MySQL dump
-- (shared/data/tweet_hashtags_db.sql), column for column. A database loaded
-- from such a dump already has them, and these statements leave it as it is.
-- Note `tweets.date_time` is text such as '2021-08-29 19:51:27 EDT'; the event
-- time parsed from it lives in tweet_meta (002).

CREATE TABLE IF NOT EXISTS `hashtags` (
  `hashtag_id` bigint(20) NOT NULL,
  `hashtag` varchar(300) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  PRIMARY KEY (`hashtag_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `tweets` (
  `tweet_id` bigint(20) NOT NULL,
  `tweet` text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  `date_time` varchar(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  `language` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,
  PRIMARY KEY (`tweet_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `tweet_hashtags` (
  `tweet_id` bigint(20) NOT NULL,
  `hashtag_id` bigint(20) NOT NULL,
  `count` bigint(20) DEFAULT NULL,
  PRIMARY KEY (`tweet_id`, `hashtag_id`),
  KEY `hashtag_id` (`hashtag_id`),
  CONSTRAINT `tweet_hashtags_ibfk_1` FOREIGN KEY (`tweet_id`) REFERENCES `tweets` (`tweet_id`) ON DELETE CASCADE,
  CONSTRAINT `tweet_hashtags_ibfk_2` FOREIGN KEY (`hashtag_id`) REFERENCES `hashtags` (`hashtag_id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
