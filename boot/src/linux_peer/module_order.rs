//! The order in which the Linux guest must load its kernel modules.
//!
//! busybox's `insmod` loads one `.ko` file and resolves nothing: every module a
//! module needs must be loaded before it. Each `.ko` says what it needs in its
//! `.modinfo` section, a list of NUL-terminated `key=value` strings, one of which is
//! `depends=virtio,virtio_ring` (empty when it needs none). [`depends`] finds that
//! string by scanning the file's bytes (no ELF parsing needed: the key is preceded by
//! the NUL ending the previous string) and [`load_order`] sorts the modules so that
//! each comes after what it depends on.

use std::collections::BTreeMap;

/// Returns the module names in the `depends=` string of the `.ko` file `ko`: empty
/// if it depends on nothing or has no such string.
pub fn depends(ko: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(start) = ko.windows(KEY.len()).position(|w| w == KEY).map(|at| at + KEY.len()) else {
        return Vec::new();
    };
    let value = &ko[start..];
    let value = &value[..value.iter().position(|&b| b == 0).unwrap_or(value.len())];
    String::from_utf8_lossy(value).split(',').filter(|name| !name.is_empty()).map(module_name).collect()
}

/// Returns a module's name as the kernel spells it: `-` and `_` are the same in
/// module names, and `depends=` uses `_`.
pub fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Returns the names of `modules` (name, the names it depends on) in an order where
/// each comes after everything it depends on; otherwise modules keep their order in
/// the list. Fails if a module depends on one not in the list, or on itself through
/// a cycle.
pub fn load_order(modules: &[(String, Vec<String>)]) -> Result<Vec<String>, String> {
    let deps: BTreeMap<&str, &[String]> = modules.iter().map(|(name, deps)| (name.as_str(), deps.as_slice())).collect();
    let mut order = Vec::new();
    for (name, _) in modules {
        visit(name, &deps, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// Appends `name` to `order` after what it depends on (depth first); `path` holds the
/// modules being visited, to catch a cycle.
fn visit(
    name: &str,
    deps: &BTreeMap<&str, &[String]>,
    path: &mut Vec<String>,
    order: &mut Vec<String>,
) -> Result<(), String> {
    if order.iter().any(|done| done == name) {
        return Ok(());
    }
    if path.iter().any(|open| open == name) {
        return Err(format!("the modules depend on each other in a cycle: {} -> {name}", path.join(" -> ")));
    }
    let Some(needs) = deps.get(name) else {
        let by = path.last().map_or(String::new(), |m| format!("{m} depends on it, but "));
        return Err(format!("module {name}: {by}it is not among the modules to load"));
    };
    path.push(name.to_string());
    for dep in needs.iter() {
        visit(dep, deps, path, order)?;
    }
    path.pop();
    order.push(name.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, deps: &[&str]) -> (String, Vec<String>) {
        (name.to_string(), deps.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn depends_is_read_from_the_modinfo_strings() {
        let ko = b"\x7fELF...\0license=GPL\0depends=virtio,virtio-ring\0retpoline=Y\0name=virtio_blk\0";
        assert_eq!(depends(ko), ["virtio", "virtio_ring"]);
        assert!(depends(b"\0license=GPL\0depends=\0name=virtio_ring\0").is_empty());
        assert!(depends(b"no modinfo at all").is_empty());
        // Not a key: "depends=" in the middle of another string.
        assert!(depends(b"\0description=what it depends=x on\0").is_empty());
    }

    /// The six virtio modules of Debian's 6.1 kernel, listed the wrong way round.
    #[test]
    fn virtio_modules_load_after_what_they_need() {
        let modules = [
            module("virtio_blk", &["virtio", "virtio_ring"]),
            module("virtio_pci", &["virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio", "virtio_ring"]),
            module("virtio_pci_modern_dev", &[]),
            module("virtio_pci_legacy_dev", &[]),
            module("virtio", &[]),
            module("virtio_ring", &["virtio"]),
        ];
        let order = load_order(&modules).unwrap();
        let position = |name: &str| order.iter().position(|m| m == name).unwrap();
        assert_eq!(order.len(), modules.len());
        for (name, deps) in &modules {
            for dep in deps {
                assert!(position(dep) < position(name), "{dep} before {name} in {order:?}");
            }
        }
        assert_eq!(
            order,
            ["virtio", "virtio_ring", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"]
        );
    }

    #[test]
    fn missing_modules_and_cycles_are_errors() {
        let missing = load_order(&[module("virtio_blk", &["virtio"])]).unwrap_err();
        assert!(missing.contains("virtio_blk depends on it"), "{missing}");
        let cycle = load_order(&[module("a", &["b"]), module("b", &["a"])]).unwrap_err();
        assert!(cycle.contains("a -> b -> a"), "{cycle}");
    }
}
