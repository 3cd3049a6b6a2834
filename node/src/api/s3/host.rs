//! Path style or virtual-host style: `http://localhost:4566/bucket/key` and
//! `http://bucket.localhost:4566/key` both address `bucket`. A host is virtual-host style
//! only when it is `<bucket>.<domain>` for one of the configured domains, whatever the
//! port (containers publish the edge on other ports); any other host (an IP address, a
//! container name, `localhost` itself) means path style.

use s3s::host::{S3Host, VirtualHost};
use s3s::S3Result;

pub struct EdgeHost {
    domains: Vec<String>,
}

impl EdgeHost {
    pub fn new(domains: impl IntoIterator<Item = impl Into<String>>) -> Self {
        EdgeHost {
            domains: domains
                .into_iter()
                .map(|d| d.into().to_ascii_lowercase())
                .collect(),
        }
    }
}

fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host.split_once(']').map_or(host, |(h, _)| &h[1..]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

impl S3Host for EdgeHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = without_port(host);
        if self.domains.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return Ok(VirtualHost::new(name));
        }
        // Longest domain first, so `s3.localhost` wins over `localhost`.
        let mut best: Option<(&str, &str)> = None;
        for domain in &self.domains {
            let Some(prefix) = name
                .len()
                .checked_sub(domain.len() + 1)
                .filter(|&cut| name.is_char_boundary(cut))
                .map(|cut| &name[..cut])
            else {
                continue;
            };
            let suffix = &name[prefix.len()..];
            if suffix.eq_ignore_ascii_case(&format!(".{domain}"))
                && !prefix.is_empty()
                && best.is_none_or(|(d, _)| d.len() < domain.len())
            {
                best = Some((domain.as_str(), prefix));
            }
        }
        Ok(match best {
            Some((domain, bucket)) => VirtualHost::new(domain).with_bucket(bucket),
            None => VirtualHost::new(name),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(host: &str) -> (String, Option<String>) {
        let h = EdgeHost::new(["localhost", "s3.localhost", "localhost.localstack.cloud"]);
        let vh = h.parse_host_header(host).unwrap();
        (vh.domain().to_string(), vh.bucket().map(str::to_string))
    }

    #[test]
    fn bucket_subdomains_are_virtual_hosts_on_any_port() {
        assert_eq!(parse("photos.localhost:4566").1.as_deref(), Some("photos"));
        assert_eq!(parse("photos.localhost").1.as_deref(), Some("photos"));
        assert_eq!(
            parse("my.bucket.s3.localhost:4571").1.as_deref(),
            Some("my.bucket")
        );
        assert_eq!(
            parse("b.localhost.localstack.cloud:4566").1.as_deref(),
            Some("b")
        );
    }

    #[test]
    fn everything_else_is_path_style() {
        for host in [
            "localhost:4566",
            "127.0.0.1:4566",
            "stratus-node1:4566",
            "[::1]:4566",
            "s3.localhost",
        ] {
            assert_eq!(parse(host).1, None, "{host}");
        }
    }
}
