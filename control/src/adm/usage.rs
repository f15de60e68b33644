//! `rvsadm -h` and `rvsadm -v`: ipvsadm's help, laid out as ipvsadm lays it out, for what
//! rvs does (its schedulers, no persistence engines, no sync daemon) and rvsadm's own
//! options (`--socket`, `--replace`).

use rvs_dataplane::sched::SchedKind;

use super::listing::IPVS_VERSION;

/// The socket rvsadm talks to when neither `--socket` nor `RVSADM_SOCKET` names one.
pub const DEFAULT_SOCKET: &str = "/run/rvsd.sock";

/// `-v`'s line.
pub fn version() -> String {
    format!(
        "rvsadm v{} (ipvsadm v1.31 command line, IPVS v{IPVS_VERSION} on rvs)\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// `-h`'s text; `program` as invoked.
pub fn usage(program: &str) -> String {
    let p = program;
    let scheds: Vec<&str> = SchedKind::ALL.iter().map(|k| k.name()).collect();
    let scheds = scheds.join("|");
    let mut s = version();
    s.push_str("Usage:\n");
    for form in [
        "-A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]",
        "-D virtual-service",
        "-C",
        "-R",
        "-S [-n]",
        "-a|e virtual-service -r server-address [options]",
        "-d virtual-service -r server-address",
        "-L|l [virtual-service] [options]",
        "-Z [virtual-service]",
        "--set tcp tcpfin udp",
        "--replace",
        "-h",
    ] {
        s.push_str(&format!("  {p} {form}\n"));
    }
    s.push_str(&format!(
        "  (any of them may start with --socket PATH; the default is $RVSADM_SOCKET, else {DEFAULT_SOCKET})\n\n"
    ));
    s.push_str(
        "Commands:\n\
         Either long or short options are allowed.\n\
         \x20 --add-service     -A        add virtual service with options\n\
         \x20 --edit-service    -E        edit virtual service with options\n\
         \x20 --delete-service  -D        delete virtual service\n\
         \x20 --clear           -C        clear the whole table\n\
         \x20 --restore         -R        restore rules from stdin, all lines in one step\n\
         \x20 --save            -S        save rules to stdout\n\
         \x20 --add-server      -a        add real server with options\n\
         \x20 --edit-server     -e        edit real server with options\n\
         \x20 --delete-server   -d        delete real server\n\
         \x20 --list            -L|-l     list the table\n\
         \x20 --zero            -Z        zero counters in a service or all services\n\
         \x20 --set tcp tcpfin udp        set connection timeout values\n\
         \x20 --replace                   replace the whole table with the rules on stdin (rvs)\n\
         \x20 --help            -h        display this help message\n\
         \x20 --version         -v        display the version\n\n",
    );
    s.push_str(
        "virtual-service:\n\
         \x20 --tcp-service|-t  service-address   service-address is host[:port]\n\
         \x20 --udp-service|-u  service-address   service-address is host[:port]\n\
         \x20 --sctp-service    service-address   service-address is host[:port]\n\
         \x20 --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n\n",
    );
    s.push_str(&format!(
        "Options:\n\
         \x20 --ipv6         -6                   fwmark entry uses IPv6\n\
         \x20 --scheduler    -s scheduler         one of {scheds},\n\
         \x20                                     the default scheduler is wlc.\n\
         \x20 --persistent   -p [timeout]         persistent service\n\
         \x20 --netmask      -M netmask           persistent granularity mask\n\
         \x20 --real-server  -r server-address    server-address is host (and port)\n\
         \x20 --gatewaying   -g                   gatewaying (direct routing) (default)\n\
         \x20 --ipip         -i                   ipip encapsulation (tunneling)\n\
         \x20 --masquerading -m                   masquerading (NAT)\n\
         \x20 --tun-type      type                one of ipip|gue|gre,\n\
         \x20                                     the default tunnel type is ipip.\n\
         \x20 --tun-port      port                tunnel destination port\n\
         \x20 --tun-nocsum                        tunnel encapsulation without checksum\n\
         \x20 --tun-csum                          tunnel encapsulation with checksum\n\
         \x20 --tun-remcsum                       tunnel encapsulation with remote checksum\n\
         \x20 --weight       -w weight            capacity of real server\n\
         \x20 --u-threshold  -x uthreshold        upper threshold of connections\n\
         \x20 --l-threshold  -y lthreshold        lower threshold of connections\n\
         \x20 --connection   -c                   output of current IPVS connections\n\
         \x20 --timeout                           output of timeout (tcp tcpfin udp)\n\
         \x20 --daemon                            output of daemon information (rvs has none)\n\
         \x20 --stats                             output of statistics information\n\
         \x20 --rate                              output of rate information\n\
         \x20 --exact                             expand numbers (display exact values)\n\
         \x20 --thresholds                        output of thresholds information\n\
         \x20 --persistent-conn                   output of persistent connection info\n\
         \x20 --tun-info                          output of tunnel information\n\
         \x20 --nosort                            disable sorting output of service/server entries\n\
         \x20 --sort                              does nothing, for backwards compatibility\n\
         \x20 --ops          -o                   one-packet scheduling\n\
         \x20 --numeric      -n                   numeric output of addresses and ports\n\
         \x20 --sched-flags  -b flags             scheduler flags (comma-separated)\n\n\
         Not in rvs: persistence engines (--pe) and the connection sync daemon\n\
         (--start-daemon, --stop-daemon).\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_the_program_and_every_scheduler() {
        let u = usage("rvsadm");
        assert!(u.starts_with("rvsadm v"));
        assert!(u.contains("  rvsadm -L|l [virtual-service] [options]\n"));
        for k in SchedKind::ALL {
            assert!(u.contains(k.name()));
        }
        assert!(version().contains("ipvsadm v1.31"));
    }
}
