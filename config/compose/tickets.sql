-- A Flickr ticket server (the pair differ by --auto-increment-offset in docker-compose.yml).
CREATE DATABASE tickets;
CREATE TABLE tickets.Tickets64 (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  stub CHAR(1) NOT NULL DEFAULT '',
  UNIQUE KEY stub (stub)
) ENGINE=InnoDB AUTO_INCREMENT=2147200000;
CREATE USER 'headroom'@'%' IDENTIFIED BY 'demo';
GRANT SELECT ON tickets.Tickets64 TO 'headroom'@'%';
