//! The full screen as ratatui draws it: header, progress, log, final
//! screen, into any frame (a terminal, or TestBackend in tests).

use std::time::Instant;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};
use ratatui::Frame;

use crate::caps::{Caps, Colors};
use crate::event::{AfterAction, Outcome};
use crate::glyphs::Glyphs;
use crate::i18n::n_;
use crate::model::{ceil_secs, format_duration, Model};

/// How a screen looks: colours and glyphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub glyphs: Glyphs,
}

impl Theme {
    /// What the terminal type says; a VT's font may say more (see
    /// [`FullscreenRenderer::set_glyphs`]).
    pub fn for_caps(caps: &Caps) -> Theme {
        Theme {
            color: caps.colors != Colors::None,
            glyphs: if caps.unicode {
                Glyphs::UNICODE
            } else {
                Glyphs::ASCII
            },
        }
    }

    fn border(&self) -> border::Set<'static> {
        self.glyphs.border
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// The header bar and banners: reverse video works everywhere.
    fn banner(&self, bg: Color) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(bg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
}

/// What the screen says of the machine besides the update: the operating
/// system's name (os-release's PRETTY_NAME) and what the admin set (a
/// title in place of "System update", a footer line such as a kiosk's
/// "call extension 123", the header's colour).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    pub system: Option<String>,
    pub title: Option<String>,
    pub footer: Option<String>,
    pub accent: Option<Color>,
}

impl Branding {
    /// A colour name (`blue`, `cyan`, `green`, `magenta`, `red`, `yellow`,
    /// `white`, `black`, `gray`, `dark-gray`, `light-*`) or `#rrggbb`.
    pub fn parse_accent(s: &str) -> Option<Color> {
        let s = s.trim();
        if let Some(hex) = s.strip_prefix('#') {
            if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let v = u32::from_str_radix(hex, 16).ok()?;
                return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
            }
            return None;
        }
        Some(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "black" => Color::Black,
            "red" => Color::Red,
            "green" => Color::Green,
            "yellow" => Color::Yellow,
            "blue" => Color::Blue,
            "magenta" => Color::Magenta,
            "cyan" => Color::Cyan,
            "gray" | "grey" => Color::Gray,
            "dark-gray" | "dark-grey" => Color::DarkGray,
            "light-red" => Color::LightRed,
            "light-green" => Color::LightGreen,
            "light-yellow" => Color::LightYellow,
            "light-blue" => Color::LightBlue,
            "light-magenta" => Color::LightMagenta,
            "light-cyan" => Color::LightCyan,
            "white" => Color::White,
            _ => return None,
        })
    }
}

/// Everything `draw` needs besides the frame.
pub struct View<'a> {
    pub model: &'a Model,
    pub now: Instant,
    pub host: &'a str,
    pub theme: Theme,
    pub branding: &'a Branding,
    /// The screen's width in columns (the text chooses its long or short
    /// form by it).
    pub width: u16,
    /// The language this console shows.
    pub tr: crate::i18n::Tr,
}

/// The least screen that shows the percentage in large digits: a kiosk's
/// 1920x1080 VT has 240x67 cells, 1024x768 has 128x48.
pub const BIG_MIN: (u16, u16) = (120, 40);
/// Rows the large digits take in the progress panel, a blank row included.
const BIG_ROWS: u16 = super::digits::ROWS as u16 + 1;

fn big_digits(area: Rect) -> bool {
    area.width >= BIG_MIN.0 && area.height >= BIG_MIN.1
}

/// Paints the whole screen.
pub fn draw(frame: &mut Frame<'_>, view: &View<'_>) {
    let area = frame.area();
    frame.render_widget(Clear, area);
    let m = view.model;
    // The last row stays empty: the cursor is left there at the end, so
    // console output that follows does not scroll the final screen away.
    let admin_footer = view.branding.footer.as_deref().filter(|f| !f.is_empty());
    let result = m.is_finished().then(|| result_lines(view));
    let status_h = status_height(area, result.as_deref(), admin_footer.is_some());
    let [header, system, status, log_area, footer, extra, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(status_h),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(u16::from(admin_footer.is_some())),
        Constraint::Length(1),
    ])
    .areas(area);

    draw_header(frame, header, view);
    draw_branding(frame, (system, extra), view, admin_footer);
    match result {
        Some(lines) => draw_result(frame, status, view, lines),
        None => draw_status(frame, status, view),
    }
    if log_area.height >= 3 {
        draw_log(frame, log_area, view);
    }
    draw_footer(frame, footer, view);
}

/// The status block's rows: the final screen takes the rows its text
/// needs, wrapped to the width (a long error on a narrow screen), at the
/// log's expense; a wide screen's large digits take theirs.
fn status_height(area: Rect, result: Option<&[Line<'_>]>, admin_footer: bool) -> u16 {
    let fixed = 4 + u16::from(admin_footer);
    match result {
        Some(lines) => {
            let needed = wrapped_rows(lines, area.width.saturating_sub(4)) + 2;
            needed.clamp(4, area.height.saturating_sub(fixed).max(4))
        }
        None if big_digits(area) => 6 + BIG_ROWS,
        None => 6,
    }
}

/// The system's name under the title, and the admin's footer line.
fn draw_branding(
    frame: &mut Frame<'_>,
    (system, extra): (Rect, Rect),
    view: &View<'_>,
    admin_footer: Option<&str>,
) {
    if let Some(name) = &view.branding.system {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(" {}", crate::model::clean(name)),
                Style::new().add_modifier(Modifier::DIM),
            )),
            system,
        );
    }
    if let Some(text) = admin_footer {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(" {}", crate::model::clean(text)),
                view.theme
                    .fg(view.branding.accent.unwrap_or(Color::Cyan))
                    .add_modifier(Modifier::BOLD),
            )),
            extra,
        );
    }
}

/// The warning or the verdict at the bottom: the long form when it fits,
/// else the short one.
fn draw_footer(frame: &mut Frame<'_>, footer: Rect, view: &View<'_>) {
    let t = view.theme;
    let ((long, short), style) = match view.model.finish.as_ref().map(|f| f.outcome) {
        None => (
            (
                n_("Do not turn off the computer until the update is finished."),
                n_("Do not turn off the computer."),
            ),
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Some(Outcome::Success) => (
            (n_("The update is finished."), n_("Finished.")),
            t.fg(Color::Green),
        ),
        Some(_) => (
            (
                n_("The update did not complete. The full log says why."),
                n_("The update did not complete."),
            ),
            t.fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    let long = view.tr.s(long);
    let text = if long.chars().count() < usize::from(footer.width) {
        long
    } else {
        view.tr.s(short)
    };
    frame.render_widget(
        Paragraph::new(Line::styled(format!(" {text}"), style)),
        footer,
    );
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, view: &View<'_>) {
    let tr = view.tr;
    let title = view
        .model
        .title
        .as_deref()
        .unwrap_or_else(|| tr.s("System update"));
    let heading = view
        .branding
        .title
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(crate::model::clean);
    let heading = heading.as_deref().unwrap_or_else(|| tr.s("System update"));
    let style = view
        .theme
        .banner(view.branding.accent.unwrap_or(Color::Blue));
    frame.render_widget(Block::new().style(style), area);
    let host = format!("{} ", view.host);
    let host_w = u16::try_from(host.chars().count()).unwrap_or(u16::MAX);
    // A gap of one column at least: on a narrow screen the title is cut
    // before the host name, never run into it.
    let [left, _, right] = Layout::horizontal([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(host_w.min(area.width / 3)),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(format!(" {heading}: {title}")).style(style),
        left,
    );
    frame.render_widget(
        Paragraph::new(host)
            .style(style)
            .alignment(Alignment::Right),
        right,
    );
}

fn draw_status(frame: &mut Frame<'_>, area: Rect, view: &View<'_>) {
    let m = view.model;
    let t = view.theme;
    let block = Block::new()
        .borders(Borders::ALL)
        .border_set(t.border())
        .padding(Padding::horizontal(1))
        .title(format!(" {} ", view.tr.s("Progress")));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let tr = view.tr;
    let step = match &m.step {
        Some(s) => tr.f(
            "Step {} of {}: {}",
            &[&s.index, &s.total, &tr.text(&s.name)],
        ),
        None => tr.s("Preparing the update").to_string(),
    };
    let message = m
        .message
        .as_ref()
        .map(|t| tr.text(t).into_owned())
        .unwrap_or_default();
    let elapsed = format_duration(m.elapsed(view.now));
    let left = match m.eta(view.now) {
        Some(d) => tr.f("about {} left", &[&format_duration(d)]),
        None => tr.s("estimating time left").to_string(),
    };
    let lines = vec![
        Line::styled(step, Style::new().add_modifier(Modifier::BOLD)),
        Line::raw(message),
        gauge_line(inner.width, m.percent, t),
        Line::raw(tr.f("Elapsed {}, {}", &[&elapsed, &left])),
    ];
    let [text, big] = Layout::vertical([Constraint::Length(4), Constraint::Min(0)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
    if big.height > super::digits::ROWS as u16 {
        draw_big_percent(frame, big, m.percent, t);
    }
}

/// The percentage in large digits, centred under the gauge.
fn draw_big_percent(frame: &mut Frame<'_>, area: Rect, percent: f32, t: Theme) {
    let text = format!("{:.0}%", percent.clamp(0.0, 100.0).floor());
    let style = if t.color {
        Style::new().fg(Color::Green)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let rows: Vec<Line<'_>> = std::iter::once(Line::raw(""))
        .chain(
            super::digits::big(&text, t.glyphs.full)
                .into_iter()
                .map(|r| Line::styled(r, style)),
        )
        .collect();
    frame.render_widget(Paragraph::new(rows).alignment(Alignment::Center), area);
}

/// `[#####-----]  42 %`: our own bar rather than ratatui's Gauge, whose
/// full block glyph the VT font may lack.
fn gauge_line(width: u16, percent: f32, t: Theme) -> Line<'static> {
    let label = format!(" {:3.0} %", percent.floor());
    let bar_w = usize::from(width).saturating_sub(label.len() + 2);
    let filled = ((bar_w as f32) * percent / 100.0).floor() as usize;
    let filled = filled.min(bar_w);
    let (full, empty) = (t.glyphs.full, t.glyphs.empty);
    let fill_style = if t.color {
        Style::new().fg(Color::Green)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    Line::from(vec![
        Span::raw("["),
        Span::styled(full.repeat(filled), fill_style),
        Span::raw(empty.repeat(bar_w - filled)),
        Span::raw("]"),
        Span::styled(label, Style::new().add_modifier(Modifier::BOLD)),
    ])
}

/// Rows `lines` take wrapped at `width` columns (word wrapping can take a
/// row more per line than the characters say: counted generously).
fn wrapped_rows(lines: &[Line<'_>], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    let rows: usize = lines
        .iter()
        .map(|l| {
            let n = l.width();
            if n <= w {
                1
            } else {
                n.div_ceil(w) + 1
            }
        })
        .sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

fn draw_result(frame: &mut Frame<'_>, area: Rect, view: &View<'_>, lines: Vec<Line<'static>>) {
    let m = view.model;
    let t = view.theme;
    let Some(fin) = &m.finish else { return };
    let (title, color) = match fin.outcome {
        Outcome::Success => (n_("UPDATE SUCCEEDED"), Color::Green),
        Outcome::RolledBackAfterBoot => (n_("UPDATE ROLLED BACK"), Color::Red),
        Outcome::Deferred => (n_("UPDATE POSTPONED"), Color::Yellow),
        _ => (n_("UPDATE FAILED"), Color::Red),
    };
    let title = format!(" {} ", view.tr.s(title));
    let banner = t.banner(color);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_set(t.border())
        .padding(Padding::horizontal(1))
        .border_style(t.fg(color).add_modifier(Modifier::BOLD))
        .title(Line::styled(title, banner));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The final screen's text, most important first: what happened, why,
/// when the machine restarts; then how long it took and where the log is,
/// which a short screen may cut.
fn result_lines(view: &View<'_>) -> Vec<Line<'static>> {
    let m = view.model;
    let t = view.theme;
    let Some(fin) = &m.finish else {
        return Vec::new();
    };
    let color = if fin.outcome.is_success() {
        Color::Green
    } else {
        Color::Red
    };
    let banner = t.banner(color);
    let mut lines = Vec::new();
    // A narrow screen gets the short headline: the error needs the rows.
    let tr = view.tr;
    let narrow = view.width < 56;
    let headline = match (fin.outcome, narrow) {
        (Outcome::Success, false) => n_("The update was installed successfully."),
        (Outcome::Success, true) => n_("The update was installed."),
        (Outcome::RolledBackAfterBoot, false) => {
            n_("The system did not start properly after the update. It was rolled back.")
        }
        (Outcome::RolledBackAfterBoot, true) => n_("The update was rolled back."),
        (Outcome::Deferred, false) => {
            n_("The update was postponed. Nothing was changed; it will be installed later.")
        }
        (Outcome::Deferred, true) => n_("The update was postponed."),
        (_, false) => n_("The update failed. The system was not fully updated."),
        (_, true) => n_("The update failed."),
    };
    lines.push(Line::styled(tr.s(headline).to_string(), banner));
    match (&fin.detail, fin.outcome) {
        (Some(d), o) if !o.is_success() => lines.push(Line::styled(
            tr.f("Error: {}", &[d]),
            t.fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        (Some(d), _) => lines.push(Line::raw(d.clone())),
        (None, _) => {}
    }
    if let Some((action, left)) = m.countdown(view.now) {
        let what = match action {
            AfterAction::Reboot => Some(n_("Restarting in {} s.")),
            AfterAction::PowerOff => Some(n_("Powering off in {} s.")),
            AfterAction::None => None,
        };
        if let Some(what) = what {
            lines.push(Line::styled(
                tr.f(what, &[&ceil_secs(left)]),
                Style::new().add_modifier(Modifier::BOLD),
            ));
        }
    }
    lines.push(Line::raw(
        tr.f("Took {}", &[&format_duration(m.elapsed(view.now))]),
    ));
    if let Some(p) = &fin.log_path {
        lines.push(Line::raw(tr.f("Full log: {}", &[&p.display()])));
    }
    lines
}

fn draw_log(frame: &mut Frame<'_>, area: Rect, view: &View<'_>) {
    let t = view.theme;
    let block = Block::new()
        .borders(Borders::ALL)
        .border_set(t.border())
        .padding(Padding::horizontal(1))
        .title(format!(" {} ", view.tr.s("Log")));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let n = usize::from(inner.height);
    let skip = view.model.log.len().saturating_sub(n);
    let lines: Vec<Line<'_>> = view
        .model
        .log
        .iter()
        .skip(skip)
        .map(|l| Line::styled(l.as_str(), t.fg(Color::Gray)))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
