//! Answers from the records (no I/O): which names are local, and what they resolve to.

use std::{collections::HashMap, net::IpAddr};

use hickory_proto::{
    op::{Query, ResponseCode},
    rr::{
        rdata::{A, AAAA, PTR},
        DNSClass, Name, RData, Record, RecordType,
    },
};

use crate::records::Records;

/// What the records say about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Answered here (authoritatively): NOERROR with `answers` (possibly none: the name
    /// exists without data of that type) or NXDOMAIN (unknown name under the domain).
    Local {
        rcode: ResponseCode,
        answers: Vec<Record>,
    },
    /// Not ours: forward it.
    NotLocal,
}

/// The records indexed for lookups.
#[derive(Debug, Clone)]
pub struct Zone {
    domain: Vec<String>,
    ttl: u32,
    by_name: HashMap<String, Vec<IpAddr>>,
    by_reverse: HashMap<String, String>,
}

/// The labels of `name`, lower-cased.
fn labels(name: &Name) -> Vec<String> {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect()
}

impl Zone {
    /// `domain` is the search domain (`dns.berth`; empty for none).
    pub fn new(records: &Records, domain: &str, ttl: u32) -> Zone {
        let domain: Vec<String> = domain
            .trim_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_ascii_lowercase())
            .collect();
        let mut by_name: HashMap<String, Vec<IpAddr>> = HashMap::new();
        let mut by_reverse = HashMap::new();
        for e in records.entries() {
            for n in &e.names {
                let ips = by_name.entry(n.to_ascii_lowercase()).or_default();
                if !ips.contains(&e.ip) {
                    ips.push(e.ip);
                }
            }
            if let Some(primary) = e.names.first() {
                by_reverse
                    .entry(labels(&Name::from(e.ip)).join("."))
                    .or_insert_with(|| primary.clone());
            }
        }
        Zone {
            domain,
            ttl,
            by_name,
            by_reverse,
        }
    }

    /// Number of distinct names.
    pub fn names(&self) -> usize {
        self.by_name.len()
    }

    fn fqdn(&self, name: &str) -> Option<Name> {
        let mut s = name.to_string();
        for l in &self.domain {
            s.push('.');
            s.push_str(l);
        }
        s.push('.');
        Name::from_ascii(&s).ok()
    }

    /// Resolves one question.
    pub fn resolve(&self, q: &Query) -> Resolution {
        if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Resolution::NotLocal;
        }
        let qtype = q.query_type();
        let labels = labels(q.name());
        let d = self.domain.len();
        let under_domain =
            d > 0 && labels.len() >= d && labels[labels.len() - d..] == self.domain[..];
        let relative = if under_domain {
            &labels[..labels.len() - d]
        } else {
            &labels[..]
        };
        if under_domain && relative.is_empty() {
            // The domain itself: it exists, with no data we serve.
            return Resolution::Local {
                rcode: ResponseCode::NoError,
                answers: Vec::new(),
            };
        }
        let key = relative.join(".");
        if let Some(ips) = self.by_name.get(&key) {
            let answers = ips
                .iter()
                .filter_map(|ip| {
                    let data = match (ip, qtype) {
                        (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(*v4)),
                        (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                            RData::AAAA(AAAA(*v6))
                        }
                        _ => return None,
                    };
                    Some(Record::from_rdata(q.name().clone(), self.ttl, data))
                })
                .collect();
            return Resolution::Local {
                rcode: ResponseCode::NoError,
                answers,
            };
        }
        if under_domain {
            return Resolution::Local {
                rcode: ResponseCode::NXDomain,
                answers: Vec::new(),
            };
        }
        if matches!(qtype, RecordType::PTR | RecordType::ANY) {
            if let Some(target) = self.by_reverse.get(&key).and_then(|n| self.fqdn(n)) {
                return Resolution::Local {
                    rcode: ResponseCode::NoError,
                    answers: vec![Record::from_rdata(
                        q.name().clone(),
                        self.ttl,
                        RData::PTR(PTR(target)),
                    )],
                };
            }
        }
        Resolution::NotLocal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn zone() -> Zone {
        let r = Records::parse("10.89.0.2 web www\n10.89.0.3 db\nfd00::3 db\n").unwrap();
        Zone::new(&r, "dns.berth", 0)
    }

    fn q(name: &str, t: RecordType) -> Query {
        Query::query(Name::from_ascii(name).unwrap(), t)
    }

    fn ips(res: &Resolution) -> Vec<String> {
        match res {
            Resolution::Local { answers, .. } => {
                answers.iter().map(|r| r.data.to_string()).collect()
            }
            Resolution::NotLocal => vec!["forward".into()],
        }
    }

    fn rcode(res: &Resolution) -> Option<ResponseCode> {
        match res {
            Resolution::Local { rcode, .. } => Some(*rcode),
            Resolution::NotLocal => None,
        }
    }

    #[test]
    fn bare_search_domain_and_case() {
        let z = zone();
        for n in ["web.", "WEB.", "www.dns.berth.", "Web.DNS.Berth."] {
            assert_eq!(
                ips(&z.resolve(&q(n, RecordType::A))),
                vec!["10.89.0.2"],
                "{n}"
            );
        }
        assert_eq!(
            ips(&z.resolve(&q("db.", RecordType::AAAA))),
            vec!["fd00::3"]
        );
        assert_eq!(ips(&z.resolve(&q("db.", RecordType::ANY))).len(), 2);
    }

    #[test]
    fn existing_name_without_that_type_is_empty_noerror() {
        let z = zone();
        let r = z.resolve(&q("web.", RecordType::AAAA));
        assert_eq!(rcode(&r), Some(ResponseCode::NoError));
        assert!(ips(&r).is_empty());
        assert_eq!(
            rcode(&z.resolve(&q("dns.berth.", RecordType::A))),
            Some(ResponseCode::NoError)
        );
    }

    #[test]
    fn unknown_names() {
        let z = zone();
        assert_eq!(
            rcode(&z.resolve(&q("nope.dns.berth.", RecordType::A))),
            Some(ResponseCode::NXDomain)
        );
        assert_eq!(z.resolve(&q("nope.", RecordType::A)), Resolution::NotLocal);
        assert_eq!(
            z.resolve(&q("example.com.", RecordType::A)),
            Resolution::NotLocal
        );
        // `web.example.com` is not `web`.
        assert_eq!(
            z.resolve(&q("web.example.com.", RecordType::A)),
            Resolution::NotLocal
        );
    }

    #[test]
    fn ptr() {
        let z = zone();
        let name = Name::from(IpAddr::V4(Ipv4Addr::new(10, 89, 0, 2)));
        let r = z.resolve(&Query::query(name, RecordType::PTR));
        assert_eq!(ips(&r), vec!["web.dns.berth."]);
        let v6: IpAddr = "fd00::3".parse().unwrap();
        let r = z.resolve(&Query::query(Name::from(v6), RecordType::PTR));
        assert_eq!(ips(&r), vec!["db.dns.berth."]);
        let other = Name::from(IpAddr::V4(Ipv4Addr::new(10, 89, 0, 9)));
        assert_eq!(
            z.resolve(&Query::query(other, RecordType::PTR)),
            Resolution::NotLocal
        );
        let no_domain = Zone::new(&Records::parse("10.89.0.2 web\n").unwrap(), "", 5);
        let name = Name::from(IpAddr::V4(Ipv4Addr::new(10, 89, 0, 2)));
        assert_eq!(
            ips(&no_domain.resolve(&Query::query(name, RecordType::PTR))),
            vec!["web."]
        );
    }

    #[test]
    fn other_classes_are_forwarded() {
        let z = zone();
        let mut query = q("web.", RecordType::A);
        query.set_query_class(DNSClass::CH);
        assert_eq!(z.resolve(&query), Resolution::NotLocal);
    }
}
