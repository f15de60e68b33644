//! rvsadm: the ipvsadm-compatible CLI. It talks to a running rvsd once the control-plane
//! issue lands; until then it prints its usage and says so.

use std::process::ExitCode;

const USAGE: &str = "\
rvsadm -- ipvsadm-compatible administration of a running rvsd

Usage (as ipvsadm):
  rvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  rvsadm -D virtual-service
  rvsadm -C
  rvsadm -R < rules
  rvsadm -S [-n]
  rvsadm -a|e virtual-service -r server-address [-g|-i|-m] [-w weight] [-x upper] [-y lower]
  rvsadm -d virtual-service -r server-address
  rvsadm -L|l [virtual-service] [options]
  rvsadm -Z [virtual-service]
  rvsadm --set tcp tcpfin udp
  virtual-service: -t|u service-address | --sctp-service service-address | -f fwmark

rvsadm cannot reach a running rvsd yet: the control API arrives with the control-plane issue.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    print!("{USAGE}");
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
