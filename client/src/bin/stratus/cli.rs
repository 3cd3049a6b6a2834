//! Command-line syntax of `stratus`: what can be typed, checked by clap before anything
//! touches the network. Semantics live in the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use stratus_client::{parse_endpoint_list, DEFAULT_ENDPOINT};

/// Command-line client for a Stratus cluster.
///
/// With no flags it talks to the local dev cluster started by `stratusd dev`.
#[derive(Debug, Parser)]
#[command(name = "stratus", version, propagate_version = true)]
pub struct Cli {
    /// gRPC endpoint(s) of the cluster, comma-separated; any node will do.
    #[arg(
        long,
        global = true,
        env = "STRATUS_ENDPOINT",
        default_value = DEFAULT_ENDPOINT,
        value_parser = EndpointList::parse,
        value_name = "URLS"
    )]
    pub endpoint: EndpointList,

    /// Deadline for each request, including retries on other nodes.
    #[arg(
        long,
        global = true,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000),
        value_name = "MS"
    )]
    pub timeout_ms: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// A parsed, non-empty list of endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointList(pub Vec<String>);

impl EndpointList {
    fn parse(list: &str) -> Result<Self, String> {
        parse_endpoint_list(list)
            .map(EndpointList)
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the cluster.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Read and write the replicated key-value store.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Manage quorum-storage volumes (six segments per protection group).
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// The page-based key-value database on a quorum-storage volume.
    Db(DbArgs),
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        name: String,
        /// Protection groups (1 to 64; default 4).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        pgs: Option<u32>,
        /// Pages per protection group (1 to 65536; default 256).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
        pages_per_pg: Option<u32>,
    },
    /// List volumes.
    List,
    /// A volume's protection groups and where their segments are.
    Describe { name: String },
    /// Delete a volume.
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// The volume holding the database (created on first use).
    #[arg(long, default_value = "db", value_name = "NAME")]
    pub volume: String,
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Store a value (opens the volume as its writer: a recovery, then the commit).
    Put { key: String, value: String },
    /// Print a value as raw bytes; exit code 1 when the key is absent.
    Get {
        key: String,
        /// Read at the writer's durable point (opens a writer, fencing any other) instead
        /// of through a read replica.
        #[arg(long)]
        consistent: bool,
    },
    /// Delete a key (succeeds whether or not it existed).
    #[command(alias = "delete")]
    Del { key: String },
    /// Store several keys at once, all or nothing: K1=V1 K2=V2 ... (at most 100).
    Mput {
        #[arg(required = true, num_args = 1..=100, value_parser = parse_pair, value_name = "K=V")]
        pairs: Vec<(String, String)>,
    },
}

/// `K=V`: the key is everything before the first '='.
fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Nodes (zone, addresses, up/down) and Raft groups (voters, leader, progress).
    Status {
        /// Print the status as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Store a value; prints the write's version.
    Put {
        key: String,
        /// The value (or use --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from a file ("-" for standard input).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Print a value to standard output as raw bytes; exit code 1 when the key is absent.
    Get { key: String },
    /// Delete a key (succeeds whether or not it existed).
    #[command(alias = "delete")]
    Del { key: String },
    /// Compare-and-set: replace the value only when it currently matches; exit code 1
    /// when it does not.
    Cas(CasArgs),
    /// List keys with a prefix as `key<TAB>value` lines, in byte order (tabs, newlines,
    /// backslashes and non-UTF-8 bytes are escaped).
    Scan {
        /// Only keys starting with this (default: every key).
        #[arg(default_value = "")]
        prefix: String,
        /// Maximum number of entries to print (pages are followed until then).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        limit: u64,
        /// Only keys strictly after this one.
        #[arg(long, value_name = "KEY")]
        start_after: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CasArgs {
    pub key: String,
    #[command(flatten)]
    pub expected: CasExpected,
    #[command(flatten)]
    pub replacement: CasReplacement,
}

/// What the current value must be for the swap to happen.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct CasExpected {
    /// The value the key must currently hold.
    #[arg(long, value_name = "V")]
    pub expected: Option<String>,
    /// The key must currently be absent.
    #[arg(long)]
    pub absent: bool,
}

/// What to do on a match.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct CasReplacement {
    /// The new value.
    #[arg(long = "new", value_name = "V")]
    pub new_value: Option<String>,
    /// Delete the key.
    #[arg(long)]
    pub delete: bool,
}

impl CasExpected {
    /// `None`: the key must be absent.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.expected.as_deref().map(str::as_bytes)
    }
}

impl CasReplacement {
    /// `None`: delete the key.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.new_value.as_deref().map(str::as_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stratus").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_to_the_dev_cluster() {
        // The environment may set STRATUS_ENDPOINT; only check when it does not.
        if std::env::var_os("STRATUS_ENDPOINT").is_some() {
            return;
        }
        let cli = parse(&["cluster", "status"]).unwrap();
        assert_eq!(cli.endpoint.0, vec!["http://127.0.0.1:7000"]);
        assert_eq!(cli.timeout_ms, 10_000);
        assert!(matches!(
            cli.command,
            Command::Cluster(ClusterCommand::Status { json: false })
        ));
    }

    #[test]
    fn endpoint_lists_are_parsed_and_can_follow_the_subcommand() {
        let cli = parse(&["kv", "get", "k", "--endpoint", "a:7000,http://b:7001"]).unwrap();
        assert_eq!(cli.endpoint.0, vec!["http://a:7000", "http://b:7001"]);
        let err = parse(&["--endpoint", "ftp://x", "kv", "get", "k"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        let err = parse(&["--endpoint", ",", "kv", "get", "k"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn put_takes_a_value_or_a_file_but_not_both() {
        let cli = parse(&["kv", "put", "k", "v"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kv(KvCommand::Put { ref key, value: Some(ref v), file: None }) if key == "k" && v == "v"
        ));
        let cli = parse(&["kv", "put", "k", "--file", "/tmp/x"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kv(KvCommand::Put {
                value: None,
                file: Some(_),
                ..
            })
        ));
        assert!(parse(&["kv", "put", "k"]).is_err());
        assert!(parse(&["kv", "put", "k", "v", "--file", "/tmp/x"]).is_err());
    }

    #[test]
    fn cas_needs_exactly_one_expectation_and_one_replacement() {
        let cli = parse(&["kv", "cas", "k", "--expected", "a", "--new", "b"]).unwrap();
        let Command::Kv(KvCommand::Cas(cas)) = cli.command else {
            panic!("not a cas");
        };
        assert_eq!(cas.expected.bytes(), Some(&b"a"[..]));
        assert_eq!(cas.replacement.bytes(), Some(&b"b"[..]));

        let cli = parse(&["kv", "cas", "k", "--absent", "--delete"]).unwrap();
        let Command::Kv(KvCommand::Cas(cas)) = cli.command else {
            panic!("not a cas");
        };
        assert_eq!(cas.expected.bytes(), None);
        assert_eq!(cas.replacement.bytes(), None);

        for bad in [
            &["kv", "cas", "k", "--new", "b"][..],
            &["kv", "cas", "k", "--absent"],
            &[
                "kv",
                "cas",
                "k",
                "--absent",
                "--expected",
                "a",
                "--new",
                "b",
            ],
            &["kv", "cas", "k", "--absent", "--new", "b", "--delete"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scan_defaults_and_limits() {
        let cli = parse(&["kv", "scan"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kv(KvCommand::Scan { ref prefix, limit: 1000, start_after: None }) if prefix.is_empty()
        ));
        let cli = parse(&["kv", "scan", "p/", "--limit", "5", "--start-after", "p/a"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kv(KvCommand::Scan {
                limit: 5,
                start_after: Some(_),
                ..
            })
        ));
        assert!(parse(&["kv", "scan", "p/", "--limit", "0"]).is_err());
        assert!(parse(&["kv", "scan", "p/", "--limit", "-3"]).is_err());
        assert!(parse(&["kv", "scan", "p/", "--limit", "lots"]).is_err());
    }

    #[test]
    fn del_has_a_delete_alias_and_bad_timeouts_are_rejected() {
        assert!(matches!(
            parse(&["kv", "delete", "k"]).unwrap().command,
            Command::Kv(KvCommand::Del { .. })
        ));
        assert!(parse(&["--timeout-ms", "0", "kv", "get", "k"]).is_err());
        assert_eq!(
            parse(&["--timeout-ms", "250", "kv", "get", "k"])
                .unwrap()
                .timeout_ms,
            250
        );
    }

    #[test]
    fn volume_and_db_commands_parse() {
        let cli = parse(&[
            "volume",
            "create",
            "v1",
            "--pgs",
            "2",
            "--pages-per-pg",
            "16",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Volume(VolumeCommand::Create { ref name, pgs: Some(2), pages_per_pg: Some(16) }) if name == "v1"
        ));
        assert!(parse(&["volume", "create", "v1", "--pgs", "0"]).is_err());
        assert!(parse(&["volume", "create", "v1", "--pgs", "65"]).is_err());
        let cli = parse(&["db", "get", "k", "--consistent"]).unwrap();
        let Command::Db(db) = cli.command else {
            panic!("not db")
        };
        assert_eq!(db.volume, "db");
        assert!(matches!(
            db.command,
            DbCommand::Get {
                consistent: true,
                ..
            }
        ));
        let cli = parse(&["db", "--volume", "other", "mput", "a=1", "b=x=y"]).unwrap();
        let Command::Db(db) = cli.command else {
            panic!("not db")
        };
        assert_eq!(db.volume, "other");
        let DbCommand::Mput { pairs } = db.command else {
            panic!("not mput")
        };
        assert_eq!(
            pairs,
            vec![("a".into(), "1".into()), ("b".into(), "x=y".into())]
        );
        assert!(parse(&["db", "mput"]).is_err());
        assert!(parse(&["db", "mput", "novalue"]).is_err());
        assert!(parse(&["db", "mput", "=v"]).is_err());
        assert!(matches!(
            parse(&["db", "delete", "k"]).unwrap().command,
            Command::Db(DbArgs {
                command: DbCommand::Del { .. },
                ..
            })
        ));
    }

    #[test]
    fn unknown_commands_are_usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["kv"]).is_err());
        assert!(parse(&["kv", "frobnicate"]).is_err());
    }
}
