//! Every message the apply service and its backends declare (events'
//! `m_`) is in the catalogue template and translated in every catalogue,
//! and words without an id come only from where they are someone else's:
//! a renderer translates ids, so a message missing here would show in
//! English on a German console without anybody noticing.

mod sources;

use std::fs;
use std::path::{Path, PathBuf};

use sources::{files, production, src};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The string literal after each `m_(` (escapes as Rust and gettext share
/// them for these texts: `\"` and `\\`).
fn declared(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("m_(") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = text[i + 3..].trim_start();
        let Some(body) = rest.strip_prefix('"') else {
            panic!(
                "m_ without a literal: {}",
                &text[i..(i + 60).min(text.len())]
            );
        };
        let mut s = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => s.push(chars.next().unwrap()),
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

/// msgid -> msgstr of a catalogue; fuzzy entries count as untranslated.
fn catalogue(p: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(p).unwrap();
    let unquote = |l: &str| -> String {
        let l = l.trim();
        l[1..l.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    };
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let fuzzy = block
            .lines()
            .any(|l| l.starts_with("#,") && l.contains("fuzzy"));
        let (mut id, mut st, mut key) = (String::new(), String::new(), 0);
        for l in block.lines() {
            if let Some(r) = l.strip_prefix("msgid ") {
                key = 1;
                id = unquote(r);
            } else if let Some(r) = l.strip_prefix("msgstr ") {
                key = 2;
                st = unquote(r);
            } else if l.starts_with('"') {
                match key {
                    1 => id += &unquote(l),
                    2 => st += &unquote(l),
                    _ => {}
                }
            }
        }
        if !id.is_empty() {
            out.push((id, if fuzzy { String::new() } else { st }));
        }
    }
    out
}

fn all_declared() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for f in files(&src()) {
        for m in declared(&production(&f)) {
            out.push((f.clone(), m));
        }
    }
    out
}

#[test]
fn every_declared_message_is_in_the_template_and_translated() {
    let declared = all_declared();
    assert!(declared.len() >= 20, "found only {declared:?}");
    let pot = catalogue(&workspace().join("po/system-update.pot"));
    let mut missing = Vec::new();
    for (f, m) in &declared {
        if !pot.iter().any(|(id, _)| id == m) {
            missing.push(format!(
                "{}: {m:?} is not in po/system-update.pot (make update-po)",
                f.display()
            ));
        }
    }
    for po in fs::read_dir(workspace().join("po")).unwrap() {
        let po = po.unwrap().path();
        if po.extension().is_none_or(|x| x != "po") {
            continue;
        }
        let cat = catalogue(&po);
        for (f, m) in &declared {
            let ok = cat.iter().any(|(id, st)| id == m && !st.is_empty());
            let args = |s: &str| s.matches("{}").count();
            let same_args = cat
                .iter()
                .all(|(id, st)| id != m || st.is_empty() || args(st) == args(m));
            if !ok || !same_args {
                missing.push(format!(
                    "{}: {m:?} has no translation with its arguments in {}",
                    f.display(),
                    po.display()
                ));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Words without an id are the programs' own (a command backend's
/// messages, apt's status lines): nothing of ours says them.
#[test]
fn only_other_programs_words_go_without_an_id() {
    let allowed = ["backend/command.rs", "backend/dpkg/mod.rs"];
    let mut found = Vec::new();
    for f in files(&src()) {
        let text = production(&f);
        let n = text.matches("Text::foreign(").count();
        let name = f.to_string_lossy();
        if n > 0 && !allowed.iter().any(|a| name.ends_with(a)) {
            found.push(format!("{name}: {n} Text::foreign"));
        }
        let built = ["Event::Message {", "Event::Step {"].iter().any(|v| {
            // A pattern ends in `..`; a value built by hand does not.
            text.match_indices(v).any(|(i, _)| {
                let body = &text[i + v.len()..];
                !body[..body.find('}').unwrap_or(body.len())].contains("..")
            })
        });
        if built {
            found.push(format!(
                "{name}: builds Event::Message by hand, not from a declared message"
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_scanner_reads_declarations() {
    let text =
        "const A: Msg = m_(\"Unpacking {}\");\nlet x = nom_(\"no\");\nm_(\n    \"say \\\"hi\\\"\")";
    assert_eq!(declared(text), ["Unpacking {}", "say \"hi\""]);
}
