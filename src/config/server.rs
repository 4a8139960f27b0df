//! `[server]` (where the API listens and how people reach it) and `[poll]` (how often and
//! how carefully databases are read).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::section::Section;
use super::{PollSettings, Problem, ServerSettings};

/// `[server]`; a wildcard `listen` without `external_url` adds a warning.
pub(super) fn server(
    s: &mut Section,
    base: &Path,
    warnings: &mut Vec<Problem>,
) -> Option<ServerSettings> {
    let listen = s
        .string("listen", false)
        .unwrap_or_else(|| "127.0.0.1:9187".to_string());
    let listen = match listen.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            s.problem(
                "listen",
                format!("{listen:?} is not a host:port address such as 127.0.0.1:9187"),
            );
            None
        }
    };
    let external_url = s.string("external_url", false);
    if let Some(text) = &external_url
        && !Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        s.problem(
            "external_url",
            format!("{text:?} is not an http:// or https:// URL"),
        );
    }
    let header_read_timeout = s.duration("header_read_timeout", Duration::from_secs(30));
    let request_timeout = s.duration("request_timeout", Duration::from_secs(60));
    let max_connections = s.positive("max_connections", 256);
    let web_config_file = s.string("web_config_file", false).map(|f| base.join(f));
    s.finish();
    let listen = listen?;
    let external_url = match external_url {
        Some(url) => url,
        None if listen.ip().is_unspecified() => {
            let url = format!("http://{}:{}", host_name(), listen.port());
            warnings.push(Problem {
                key: "server.external_url".to_string(),
                message: format!(
                    "is not set and server.listen ({listen}) is a wildcard address: links in pages use this machine's name, {url}; set external_url to the address people use"
                ),
            });
            url
        }
        None => format!("http://{listen}"),
    };
    Some(ServerSettings {
        listen,
        external_url: external_url.trim_end_matches('/').to_string(),
        header_read_timeout: header_read_timeout?,
        request_timeout: request_timeout?,
        max_connections: max_connections?,
        web_config_file,
    })
}

/// `[poll]`.
pub(super) fn poll(s: &mut Section) -> Option<PollSettings> {
    let interval = s.duration("interval", Duration::from_secs(60));
    let query_timeout = s.duration("query_timeout", Duration::from_secs(10));
    let concurrency = s.positive("concurrency", 8);
    // Absent: the interval, so that a poll never runs into the shard's next one.
    let shard_timeout = if s.has("shard_timeout") {
        s.duration("shard_timeout", Duration::MAX).map(Some)
    } else {
        Some(None)
    };
    let reread_within = s.duration("reread_within", Duration::from_secs(10 * 60));
    s.finish();
    let interval = interval?;
    Some(PollSettings {
        interval,
        query_timeout: query_timeout?,
        concurrency: concurrency?,
        shard_timeout: shard_timeout?.unwrap_or(interval),
        reread_within: reread_within?,
    })
}

/// This machine's name, for links when headroom listens on every address: from the kernel
/// (`/proc/sys/kernel/hostname`), else `$HOSTNAME`, else `localhost`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml: &str) -> Result<PollSettings, Vec<String>> {
        crate::config::testing::read(toml).map(|s| s.poll)
    }

    #[test]
    fn reread_within_defaults_to_ten_minutes_and_is_read() {
        assert_eq!(
            read("").map(|p| p.reread_within),
            Ok(Duration::from_secs(600))
        );
        assert_eq!(
            read("[poll]\nreread_within = \"90s\"\n").map(|p| p.reread_within),
            Ok(Duration::from_secs(90))
        );
    }

    #[test]
    fn a_zero_or_malformed_reread_within_is_a_problem_with_its_key() {
        assert_eq!(
            read("[poll]\nreread_within = \"0s\"\n").map(|p| p.reread_within),
            Err(vec![
                "poll.reread_within: must be longer than zero".to_string()
            ])
        );
        let problems = read("[poll]\nreread_within = \"ten minutes\"\ninterval = \"0s\"\n")
            .unwrap_err()
            .join("\n");
        assert!(
            problems.contains("poll.reread_within: \"ten minutes\" is not a duration"),
            "{problems}"
        );
        assert!(problems.contains("poll.interval"), "{problems}");
    }
}
