//! `[health]`: the keepalived.conf whose checkers rvsd runs (docs/health.md).

use std::path::PathBuf;

use super::raw::RawHealth;
use super::values::{Ctx, R};

/// `[health]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthConfig {
    /// `keepalived = "FILE"` (as `rvsd run --keepalived FILE`, which wins over it).
    pub keepalived: Option<PathBuf>,
}

pub(super) fn read_health(c: &Ctx, raw: &RawHealth) -> R<HealthConfig> {
    let Some(s) = &raw.keepalived else {
        return Ok(HealthConfig::default());
    };
    if s.get_ref().trim().is_empty() {
        return Err(c.err(
            s.span(),
            "health.keepalived",
            "an empty path (want the keepalived.conf to read, or no key)",
        ));
    }
    Ok(HealthConfig {
        keepalived: Some(PathBuf::from(s.get_ref())),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{refuse, MINIMAL};

    #[test]
    fn keepalived_is_a_path_or_absent() {
        let c = parse(&format!(
            "{MINIMAL}[health]\nkeepalived = \"/etc/keepalived/keepalived.conf\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.health.keepalived.as_deref(),
            Some(std::path::Path::new("/etc/keepalived/keepalived.conf"))
        );
        assert_eq!(parse(MINIMAL).unwrap().health.keepalived, None);
        let e = refuse(&format!("{MINIMAL}[health]\nkeepalived = \"\"\n"));
        assert_eq!(e.key, "health.keepalived", "{e}");
        let e = refuse(&format!("{MINIMAL}[health]\nchecks = 1\n"));
        assert!(e.to_string().contains("checks"), "{e}");
    }
}
