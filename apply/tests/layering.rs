//! The library's shape, checked: no import circle among the top-level
//! modules of apply/src (data below the logic that writes it), and no
//! source file over 600 lines (a file that grows past it becomes a
//! folder). Read from the sources, as a reviewer would.

mod sources;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sources::{files, production, src};

/// The top-level module a file belongs to ("backend" for
/// backend/dpkg/mod.rs), None for lib.rs and main.rs.
fn top(p: &Path) -> Option<String> {
    let rel = p.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// `crate::NAME` and `crate::{NAME, ...}` in `text`.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let all = files(&src());
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        if let Some(t) = top(f) {
            g.entry(t).or_default();
        }
    }
    for f in &all {
        let Some(t) = top(f) else { continue };
        let deps: BTreeSet<String> = uses(&production(f))
            .into_iter()
            .filter(|d| *d != t && g.contains_key(d))
            .collect();
        g.entry(t).or_default().extend(deps);
    }
    g
}

/// A circle through `start`, if any (depth first).
fn circle(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &g[at] {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(g, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let g = graph();
    assert!(g.len() > 30, "read only {:?}", g.keys());
    let circles: Vec<String> = g
        .keys()
        .filter_map(|m| circle(&g, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_source_file_passes_600_lines() {
    let all = files(&src());
    let long: Vec<String> = all
        .iter()
        .map(|f| (f, production(f).lines().count()))
        .filter(|(_, n)| *n > 600)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "make these folders:\n{}", long.join("\n"));
}

#[test]
fn the_reader_sees_a_circle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(circle(&g, "a"), Some(vec!["a".into(), "b".into()]));
    assert_eq!(circle(&g, "c"), None);
    assert_eq!(
        uses("use crate::{a, b::c};\nlet x = crate::d::e();"),
        BTreeSet::from(["a".into(), "b".into(), "d".into()])
    );
}
