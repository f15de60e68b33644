//! `[control]`: how `rvsadm` reaches a running `rvsd`, and who may.

use super::raw::RawControl;
use super::values::{Ctx, R};

/// The largest `[control] heap_reserve_mib` (1 TiB).
pub const MAX_HEAP_RESERVE_MIB: i64 = 1 << 20;

/// `[control] socket` when not given.
pub const DEFAULT_SOCKET: &str = "/run/rvsd.sock";

/// `[control]`: how `rvsadm` reaches a running `rvsd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlConfig {
    /// Unix socket path.
    pub socket: String,
    /// A Unix group (a name or a numeric gid) whose members may also use the socket, besides
    /// root and `rvsd`'s own user; `None`: only those two. Kept as written: `rvsd` resolves
    /// it when it opens the socket.
    pub group: Option<String>,
    /// Heap faulted in at start ([`crate::allocator::reserve_heap`]), MiB; 0: none.
    pub heap_reserve_mib: u32,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: DEFAULT_SOCKET.to_string(),
            group: None,
            heap_reserve_mib: 0,
        }
    }
}

/// `[control]`.
pub(super) fn read_control(c: &Ctx, raw: &RawControl) -> R<ControlConfig> {
    let mut control = ControlConfig::default();
    if let Some(s) = &raw.socket {
        let v = s.get_ref().trim();
        if v.is_empty() {
            return Err(c.err(s.span(), "control.socket", "empty socket path"));
        }
        control.socket = v.to_string();
    }
    if let Some(s) = &raw.group {
        let v = s.get_ref().trim();
        if v.is_empty() {
            return Err(c.err(
                s.span(),
                "control.group",
                "empty group name (want a group name or a numeric gid, or no key)",
            ));
        }
        control.group = Some(v.to_string());
    }
    control.heap_reserve_mib = c.int(
        &raw.heap_reserve_mib,
        "control.heap_reserve_mib",
        0,
        MAX_HEAP_RESERVE_MIB,
        0,
    )? as u32;
    Ok(control)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::testutil::{refuse, MINIMAL};

    #[test]
    fn control_group_is_optional_and_kept_as_written() {
        let c = parse(MINIMAL).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.control.group, None);
        let group = |v: &str| {
            parse(&format!("{MINIMAL}[control]\ngroup = {v}\n"))
                .unwrap_or_else(|e| panic!("{e}"))
                .control
        };
        let c = group("\"rvsadm\"");
        assert_eq!(c.group.as_deref(), Some("rvsadm"));
        assert_eq!(c.socket, "/run/rvsd.sock");
        assert_eq!(group("\"1001\"").group.as_deref(), Some("1001"));
    }

    #[test]
    fn heap_reserve_is_off_unless_given_and_checked() {
        assert_eq!(parse(MINIMAL).unwrap().control.heap_reserve_mib, 0);
        let c = parse(&format!("{MINIMAL}[control]\nheap_reserve_mib = 512\n")).unwrap();
        assert_eq!(c.control.heap_reserve_mib, 512);
        let e = refuse(&format!("{MINIMAL}[control]\nheap_reserve_mib = -1\n"));
        assert_eq!(e.key, "control.heap_reserve_mib");
        assert!(e.message.contains("want 0..1048576"), "{e}");
    }

    #[test]
    fn empty_control_group_is_refused_naming_the_key() {
        let e = refuse(&format!("{MINIMAL}[control]\ngroup = \" \"\n"));
        assert_eq!((e.line, e.column, e.key.as_str()), (20, 9, "control.group"));
        assert_eq!(
            e.to_string(),
            "line 20, column 9, key control.group: empty group name (want a group name or a \
             numeric gid, or no key)"
        );
        // A gid is written as a string, as a name is.
        let e = refuse(&format!("{MINIMAL}[control]\ngroup = 1001\n"));
        assert_eq!((e.line, e.key.as_str()), (20, "control.group"));
        assert!(e.message.contains("expected a string"), "{e}");
    }
}
