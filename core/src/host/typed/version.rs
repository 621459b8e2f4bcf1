//! Which provided interface serves which import: `acme:thermo/sensor@1.2.0`
//! is served by the same interface at the same major version and a minor
//! version at least the import's (`@1.4.1` serves it, `@1.1.0` and
//! `@2.0.0` do not). Below 1.0 the minor version is the major one, as in
//! Cargo: `@0.3.2` serves `@0.3.0`, not `@0.2.0`. A pre-release (`-draft`)
//! serves only itself, and an unversioned name only an unversioned one.

use semver::Version;

/// `acme:thermo/sensor@1.2.0` split into the interface and its version.
pub fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((interface, version)) => (interface, Some(version)),
        None => (name, None),
    }
}

/// Whether the export named `provided` serves the import named `wanted`.
pub fn serves(provided: &str, wanted: &str) -> bool {
    let ((pi, pv), (wi, wv)) = (split(provided), split(wanted));
    if pi != wi {
        return false;
    }
    match (pv, wv) {
        (None, None) => true,
        (Some(p), Some(w)) if p == w => true,
        (Some(p), Some(w)) => match (Version::parse(p), Version::parse(w)) {
            (Ok(p), Ok(w)) if p.pre.is_empty() && w.pre.is_empty() => {
                if w.major == 0 {
                    p.major == 0 && p.minor == w.minor && p.patch >= w.patch
                } else {
                    p.major == w.major && (p.minor, p.patch) >= (w.minor, w.patch)
                }
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::serves;

    #[test]
    fn same_major_and_a_minor_at_least_the_imports() {
        let wanted = "acme:thermo/sensor@1.2.0";
        assert!(serves("acme:thermo/sensor@1.2.0", wanted));
        assert!(serves("acme:thermo/sensor@1.4.1", wanted));
        assert!(!serves("acme:thermo/sensor@1.1.9", wanted));
        assert!(!serves("acme:thermo/sensor@2.0.0", wanted));
        assert!(!serves("acme:thermo/other@1.2.0", wanted));
        assert!(!serves("acme:thermo/sensor", wanted));
        assert!(serves("acme:x/y@0.3.2", "acme:x/y@0.3.0"));
        assert!(!serves("acme:x/y@0.4.0", "acme:x/y@0.3.0"));
        assert!(serves("acme:x/y@0.1.0-draft", "acme:x/y@0.1.0-draft"));
        assert!(!serves("acme:x/y@0.1.1-draft", "acme:x/y@0.1.0-draft"));
    }
}
