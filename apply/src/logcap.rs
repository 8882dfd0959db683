//! A log bounded by keeping its head and its tail: the first lines as they
//! come, the last ones in memory until the end, and a count of what lay
//! between. The start of an update's output says what it was doing, the end
//! why it failed; a backend that floods (a maintainer script in a loop)
//! must not fill the disk or the journal.

use std::collections::VecDeque;

/// The update's log file: /var/log/system-update/ID.log.
pub const FILE_HEAD: usize = 4 << 20;
pub const FILE_TAIL: usize = 1 << 20;
/// The journal gets less: it is shared with the whole system.
pub const JOURNAL_HEAD: usize = 1 << 20;
pub const JOURNAL_TAIL: usize = 256 << 10;

#[derive(Debug)]
pub struct HeadTail {
    head_left: usize,
    /// The tail's lines, each ended by a newline, as one byte ring: memory
    /// is the byte count itself (a String per line would cost more than the
    /// line when a flood prints "y" a million times).
    tail: VecDeque<u8>,
    tail_max: usize,
    omitted_lines: u64,
    omitted_bytes: u64,
    finished: bool,
}

impl HeadTail {
    /// At most `head` bytes of lines as they come, and the last `tail`
    /// bytes of lines at the end (a line counts its newline).
    pub fn new(head: usize, tail: usize) -> HeadTail {
        HeadTail {
            head_left: head,
            tail: VecDeque::new(),
            tail_max: tail,
            omitted_lines: 0,
            omitted_bytes: 0,
            finished: false,
        }
    }

    /// Takes `line`: true when it belongs to the head and is to be written
    /// now; otherwise it is kept for the end (pushing out older ones).
    pub fn push(&mut self, line: &str) -> bool {
        let size = line.len() + 1;
        if self.tail.is_empty() && size <= self.head_left {
            self.head_left -= size;
            return true;
        }
        // Once a line missed the head, everything after it is tail: the
        // head must not pick up later short lines out of order.
        self.head_left = 0;
        self.tail.extend(line.bytes().filter(|&b| b != b'\n'));
        self.tail.push_back(b'\n');
        while self.tail.len() > self.tail_max {
            let end = self
                .tail
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.tail.len(), |i| i + 1);
            self.tail.drain(..end);
            self.omitted_lines += 1;
            self.omitted_bytes += end as u64;
        }
        false
    }

    /// What comes at the end, once: a line saying what was left out (when
    /// anything was), and the kept tail as bytes, each line ended by a
    /// newline (one buffer, not a String per line: the end of a flood is
    /// the moment memory would peak).
    pub fn finish(&mut self) -> (Option<String>, Vec<u8>) {
        if self.finished {
            return (None, Vec::new());
        }
        self.finished = true;
        let summary = (self.omitted_lines > 0).then(|| {
            format!(
                "[… {} lines ({} bytes) of output left out here: the log keeps its first and last lines …]",
                self.omitted_lines, self.omitted_bytes
            )
        });
        let tail = std::mem::take(&mut self.tail);
        (summary, Vec::from(tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_all_head() {
        let mut h = HeadTail::new(100, 10);
        assert!(h.push("one"));
        assert!(h.push("two"));
        assert_eq!(h.finish(), (None, Vec::new()));
    }

    #[test]
    fn a_flood_keeps_head_and_tail_and_counts_the_middle() {
        let mut h = HeadTail::new(20, 20);
        let mut head = Vec::new();
        for i in 0..1000 {
            let l = format!("line {i:04}");
            if h.push(&l) {
                head.push(l);
            }
        }
        // 10 bytes a line: two in the head, two in the tail.
        assert_eq!(head, vec!["line 0000", "line 0001"]);
        let (summary, tail) = h.finish();
        assert_eq!(
            summary.as_deref(),
            Some("[… 996 lines (9960 bytes) of output left out here: the log keeps its first and last lines …]")
        );
        assert_eq!(tail, b"line 0998\nline 0999\n");
        assert_eq!(
            h.finish(),
            (None, Vec::new()),
            "finish gives its lines once"
        );
    }

    #[test]
    fn after_the_head_is_full_short_lines_do_not_sneak_in() {
        let mut h = HeadTail::new(10, 100);
        assert!(h.push("12345678"));
        assert!(!h.push("too long for the rest"));
        assert!(!h.push("a"), "order is kept: later lines go to the tail");
        assert_eq!(h.finish(), (None, b"too long for the rest\na\n".to_vec()));
    }
}
