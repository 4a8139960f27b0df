-- The Etsy-like demo schema (the same as src/sandbox/mod.rs ETSY_SCHEMA_SQL), and
-- headroom's user with the one grant it needs.
CREATE DATABASE etsy;
CREATE TABLE etsy.shops (
  shop_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE etsy.treasuries (
  treasury_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  shop_id BIGINT UNSIGNED NOT NULL,
  title VARCHAR(64) NOT NULL,
  KEY shop_id (shop_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.treasury_comments (
  comment_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  treasury_id INT UNSIGNED NOT NULL,
  body VARCHAR(255) NOT NULL DEFAULT '',
  KEY treasury_id (treasury_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.activity_feed (
  feed_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  actor_id INT NOT NULL,
  verb VARCHAR(16) NOT NULL DEFAULT 'favorited',
  KEY actor_id (actor_id)
) ENGINE=InnoDB AUTO_INCREMENT=1900000000;
CREATE TABLE etsy.teams (
  team_id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL
) ENGINE=InnoDB AUTO_INCREMENT=13400;
CREATE TABLE etsy.team_members (
  team_id INT NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (team_id, user_id),
  CONSTRAINT team_members_team FOREIGN KEY (team_id) REFERENCES etsy.teams (team_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.listings (
  listing_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  shop_id BIGINT UNSIGNED NOT NULL,
  CONSTRAINT listings_shop FOREIGN KEY (shop_id) REFERENCES etsy.shops (shop_id)
) ENGINE=InnoDB;
CREATE TABLE etsy.audit_log (
  entry_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT UNSIGNED NOT NULL,
  action VARCHAR(32) NOT NULL DEFAULT ''
) ENGINE=InnoDB;
CREATE USER 'headroom'@'%' IDENTIFIED BY 'demo';
GRANT SELECT ON etsy.* TO 'headroom'@'%';
