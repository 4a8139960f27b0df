//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or as
//! one JSON object per line. Text lines escape every field (see [`crate::escape`]), so a
//! name read from a database cannot break a line or paint the terminal; colour is used
//! only when stderr is a terminal and `NO_COLOR` is not set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::debug_fn;

use crate::escape::escape;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. Calling it twice is harmless (tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .fmt_fields(
                debug_fn(|writer, field, value| {
                    let text = format!("{value:?}");
                    if field.name() == "message" {
                        write!(writer, "{}", escape(&text))
                    } else {
                        write!(writer, "{field}={}", escape(&text))
                    }
                })
                .delimited(" "),
            )
            .try_init(),
        // JSON escapes control characters itself.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
