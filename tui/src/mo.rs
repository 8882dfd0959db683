//! A reader of GNU gettext's compiled catalogues (`.mo`), the part we use:
//! singular messages, looked up by their English text. The format is two
//! tables of (length, offset) pairs into the file, originals and
//! translations, after a seven-word header (gettext manual, "The Format of
//! GNU MO Files"). Every length and offset is checked against the file, so
//! a broken or hostile catalogue is refused, never read out of bounds.

use std::collections::HashMap;

const MAGIC: u32 = 0x9504_12de;
/// More messages than this is not a catalogue of ours.
const MAX_MESSAGES: usize = 100_000;

/// The translations of a catalogue, by message id.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    map: HashMap<String, String>,
}

impl Catalog {
    /// The translation of `msgid`; None when the catalogue has none (or an
    /// empty one, which gettext also treats as untranslated).
    pub fn get(&self, msgid: &str) -> Option<&str> {
        self.map.get(msgid).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn not_a_catalogue() -> anyhow::Error {
    anyhow::anyhow!("not a gettext catalogue (bad magic number)")
}

fn truncated(what: &str) -> anyhow::Error {
    anyhow::anyhow!("truncated or inconsistent catalogue ({what})")
}

/// Reads a catalogue from its bytes.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Catalog> {
    let order = byte_order(bytes)?;
    let word = |i: usize| word_at(bytes, i * 4, order);
    let revision = word(1)?;
    // Major revision 0 and 1 share the tables we read.
    if revision >> 16 > 1 {
        anyhow::bail!("unknown catalogue revision {revision}");
    }
    let count = word(2)? as usize;
    if count > MAX_MESSAGES {
        anyhow::bail!("more than {MAX_MESSAGES} messages");
    }
    let (originals, translations) = (word(3)? as usize, word(4)? as usize);
    let mut map = HashMap::with_capacity(count);
    for i in 0..count {
        let id = string_at(bytes, originals, i, order)?;
        let text = string_at(bytes, translations, i, order)?;
        // The header (empty id), and messages with a context, which we
        // never ask for.
        if id.is_empty() || id.contains('\u{4}') {
            continue;
        }
        // Plural entries: the singular id, and its first form.
        let id = id.split('\0').next().unwrap_or_default();
        let text = text.split('\0').next().unwrap_or_default();
        if !text.is_empty() {
            map.insert(id.to_string(), text.to_string());
        }
    }
    Ok(Catalog { map })
}

#[derive(Clone, Copy)]
enum Order {
    Little,
    Big,
}

fn byte_order(bytes: &[u8]) -> anyhow::Result<Order> {
    let head: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(not_a_catalogue)?;
    if u32::from_le_bytes(head) == MAGIC {
        Ok(Order::Little)
    } else if u32::from_be_bytes(head) == MAGIC {
        Ok(Order::Big)
    } else {
        Err(not_a_catalogue())
    }
}

fn word_at(bytes: &[u8], at: usize, order: Order) -> anyhow::Result<u32> {
    let b: [u8; 4] = at
        .checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| truncated("a header or table word"))?;
    Ok(match order {
        Order::Little => u32::from_le_bytes(b),
        Order::Big => u32::from_be_bytes(b),
    })
}

/// The `i`th string of the table at `table`: its (length, offset) pair,
/// then that many bytes, which must be UTF-8 (our catalogues are).
fn string_at(bytes: &[u8], table: usize, i: usize, order: Order) -> anyhow::Result<&str> {
    let entry = i
        .checked_mul(8)
        .and_then(|o| o.checked_add(table))
        .ok_or_else(|| truncated("a table entry"))?;
    let len = word_at(bytes, entry, order)? as usize;
    let offset = word_at(bytes, entry + 4, order)? as usize;
    let raw = offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or_else(|| truncated("a string"))?;
    std::str::from_utf8(raw).map_err(|_| truncated("a string that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A catalogue as msgfmt lays it out (little endian, no hash table).
    fn write(pairs: &[(&str, &str)], big: bool) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let n = pairs.len() as u32;
        let (orig, trans) = (28u32, 28 + 8 * n);
        let mut strings = Vec::new();
        let mut tables = (Vec::new(), Vec::new());
        let data_start = 28 + 16 * n;
        for (id, text) in pairs {
            for (s, table) in [(id, &mut tables.0), (text, &mut tables.1)] {
                table.extend(w(s.len() as u32));
                table.extend(w(data_start + strings.len() as u32));
                strings.extend(s.as_bytes());
                strings.push(0);
            }
        }
        let mut out = Vec::new();
        for v in [MAGIC, 0, n, orig, trans, 0, 0] {
            out.extend(w(v));
        }
        out.extend(tables.0);
        out.extend(tables.1);
        out.extend(strings);
        out
    }

    #[test]
    fn reads_both_byte_orders_and_skips_header_context_and_empty() {
        let pairs = [
            ("", "Content-Type: text/plain; charset=UTF-8\n"),
            ("Verifying the update", "Das Update wird geprüft"),
            ("ctx\u{4}Open", "Öffnen"),
            ("One file\0{} files", "Eine Datei\0{} Dateien"),
            ("Untranslated", ""),
        ];
        for big in [false, true] {
            let c = parse(&write(&pairs, big)).unwrap();
            assert_eq!(
                c.get("Verifying the update"),
                Some("Das Update wird geprüft")
            );
            assert_eq!(c.get("One file"), Some("Eine Datei"));
            assert_eq!(c.get(""), None);
            assert_eq!(c.get("Open"), None);
            assert_eq!(c.get("Untranslated"), None);
            assert_eq!(c.len(), 2);
        }
    }

    fn refusal(bytes: &[u8]) -> String {
        match parse(bytes) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn broken_catalogues_are_refused() {
        let magic = "not a gettext catalogue (bad magic number)";
        assert_eq!(refusal(b""), magic);
        assert_eq!(refusal(b"hello world, no catalogue"), magic);
        let mut bytes = write(&[("a", "b")], false);
        bytes.truncate(bytes.len() - 3);
        assert!(refusal(&bytes).starts_with("truncated or inconsistent catalogue"));
        let mut bytes = write(&[("a", "b")], false);
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(refusal(&bytes), "more than 100000 messages");
    }

    proptest! {
        #[test]
        fn what_is_written_is_read(pairs in proptest::collection::hash_map("[a-zA-Z {}.]{1,20}", "[a-zA-ZäöüÄÖÜß {}.]{1,20}", 0..20)) {
            let v: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let c = parse(&write(&v, false)).unwrap();
            prop_assert_eq!(c.len(), pairs.len());
            for (k, v) in &pairs {
                prop_assert_eq!(c.get(k), Some(v.as_str()));
            }
        }

        #[test]
        fn any_bytes_are_read_or_refused_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn a_damaged_catalogue_is_read_or_refused(flip in 0usize..200, to in any::<u8>()) {
            let mut bytes = write(&[("Verifying the update", "Prüfen"), ("Configuring {}", "{} wird eingerichtet")], false);
            let i = flip % bytes.len();
            bytes[i] = to;
            let _ = parse(&bytes);
        }
    }
}
