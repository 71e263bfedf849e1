//! Image reference parsing (berth-reference's grammar and berth_image::Reference's
//! normalisation): no panic, and every accepted reference round-trips through its
//! printed forms (fully qualified and familiar).

#![no_main]

use berth_image::Reference;
use libfuzzer_sys::fuzz_target;

fn check(s: &str) {
    if let Ok(p) = berth_reference::parse(s) {
        // Re-assembling the parts must parse to the same parts.
        let mut again = format!("{}/{}", p.registry, p.path);
        if let Some(t) = &p.tag {
            again.push(':');
            again.push_str(t);
        }
        if let Some(d) = &p.digest {
            again.push('@');
            again.push_str(d);
        }
        let q = berth_reference::parse(&again)
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its full form {again:?} fails: {e}"));
        assert_eq!(
            (&p.registry, &p.path, &p.tag, &p.digest),
            (&q.registry, &q.path, &q.tag, &q.digest),
            "{s:?} -> {again:?}"
        );
    }

    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let full = r.to_string();
    let r2 = Reference::parse(&full)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its printed form {full:?} fails: {e}"));
    assert_eq!(r, r2, "{s:?} -> {full:?}");
    assert_eq!(full, r2.to_string());
    let familiar = r.familiar();
    let r3 = Reference::parse(&familiar)
        .unwrap_or_else(|e| panic!("{s:?} parsed, but its familiar form {familiar:?} fails: {e}"));
    assert_eq!(r, r3, "{s:?} -> familiar {familiar:?}");
    assert!(
        r.repository().contains('/'),
        "{s:?}: repository {:?}",
        r.repository()
    );
    assert!(
        r.tag().is_some() || r.digest().is_some(),
        "{s:?}: neither tag nor digest"
    );
    let _ = r.familiar_repository();
    if let Ok(t) = r.with_tag("v1.0") {
        assert_eq!(t.repository(), r.repository());
        assert_eq!(t.tag(), Some("v1.0"));
    } else {
        panic!("{s:?}: with_tag(\"v1.0\") failed");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
});
