//! An error and its causes as one line, for a record, the journal or a
//! terminal: each cause is added unless the text already quotes it (the
//! typed errors print their source; anyhow's `{:#}` would print it twice).

pub fn of(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let own = e.to_string();
        if !text.contains(&own) {
            text = format!("{text}: {own}");
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io;

    #[test]
    fn each_cause_once() {
        let io = io::Error::new(io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(io).context("/a: open failed");
        assert_eq!(super::of(e.as_ref()), "/a: open failed: gone");
        // A context that quotes its cause already does not repeat it.
        let io = io::Error::new(io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(io)
            .context("/a: gone")
            .context("snapshot");
        assert_eq!(super::of(e.as_ref()), "snapshot: /a: gone");
    }
}
