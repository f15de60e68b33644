//! The ipvsadm lines that take one rule set to another (what a health transition sends to
//! the controller, as keepalived sends IPVS one change per real server).

use crate::rules::{Command, RuleSet};

/// `-a`, `-e` and `-d` for the dests (and `-A`, `-D` for services, which a keepalived
/// configuration does not change while it runs) that differ between `old` and `new`.
pub fn lines(old: &RuleSet, new: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    for s in &new.services {
        let id = s.spec.id;
        let Some(o) = old.service(&id) else {
            out.push(Command::AddService(s.spec.clone()).to_string());
            out.extend(
                s.dests
                    .iter()
                    .rev()
                    .map(|d| Command::AddServer(id, d.clone()).to_string()),
            );
            continue;
        };
        if o.spec != s.spec {
            out.push(Command::EditService(s.spec.clone()).to_string());
        }
        for d in o.dests.iter() {
            if !s.dests.iter().any(|n| (n.addr, n.port) == (d.addr, d.port)) {
                out.push(Command::DeleteServer(id, d.addr, d.port).to_string());
            }
        }
        for d in s.dests.iter().rev() {
            match o
                .dests
                .iter()
                .find(|x| (x.addr, x.port) == (d.addr, d.port))
            {
                None => out.push(Command::AddServer(id, d.clone()).to_string()),
                Some(x) if x != d => out.push(Command::EditServer(id, d.clone()).to_string()),
                Some(_) => {}
            }
        }
    }
    for s in &old.services {
        if new.service(&s.spec.id).is_none() {
            out.push(Command::DeleteService(s.spec.id).to_string());
        }
    }
    out
}

/// Add the services of `more` (which `rules` must not have) to `rules`, as rvsd does with a
/// keepalived file's beside `--rules`; a refusal names the rule it came from.
pub fn add_to(rules: &mut RuleSet, more: &RuleSet) -> Result<(), String> {
    for line in lines(&RuleSet::new(), more) {
        let added = crate::rules::parse_line(&line).and_then(|cmd| match cmd {
            Some(c) => rules.apply_in_place(&c),
            None => Ok(()),
        });
        if let Err(e) = added {
            return Err(format!("{} (beside --rules: `{line}`)", e.message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(t: &str) -> RuleSet {
        RuleSet::from_text(t).unwrap()
    }

    #[test]
    fn the_lines_take_the_old_set_to_the_new() {
        let old = set("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.11 -g\n-a -t 10.0.0.1:80 -r 10.0.0.12 -g\n");
        let new = set("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.12 -g -w 0\n-a -t 10.0.0.1:80 -r 10.0.0.99 -g\n");
        let l = lines(&old, &new);
        assert_eq!(
            l,
            vec![
                "-d -t 10.0.0.1:80 -r 10.0.0.11:80",
                "-e -t 10.0.0.1:80 -r 10.0.0.12:80 -g -w 0",
                "-a -t 10.0.0.1:80 -r 10.0.0.99:80 -g -w 1",
            ]
        );
        // Applied to the old set, they give the new one.
        let mut got = old.clone();
        for line in &l {
            got.apply_in_place(&crate::rules::parse_line(line).unwrap().unwrap())
                .unwrap();
        }
        assert_eq!(got.save(), new.save());
        assert!(lines(&new, &new).is_empty());
    }
}
