//! 2-D line/scatter charts rendered with plotters to SVG and PNG.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use serde::{Deserialize, Serialize};

use crate::ReportError;
use crate::atomic::{commit, temp_sibling};
use crate::figure::sealed::Draw;

/// Width of every chart in pixels.
const WIDTH: u32 = 900;
/// Height of every chart in pixels (caption included).
const HEIGHT: u32 = 600;
/// The font family used for all text; backed by the embedded DejaVu Sans.
pub(crate) const FONT_FAMILY: &str = "sans-serif";
pub(crate) const TITLE_SIZE: f64 = 26.0;
pub(crate) const AXIS_DESC_SIZE: f64 = 20.0;
pub(crate) const TICK_SIZE: f64 = 15.0;
pub(crate) const LEGEND_SIZE: f64 = 16.0;
const CAPTION_SIZE: f64 = 15.0;
const CAPTION_LINE_HEIGHT: u32 = 20;
const CAPTION_MAX_LINES: usize = 6;
const CAPTION_PAD: u32 = 12;
pub(crate) const MARKER_RADIUS: i32 = 4;
pub(crate) const LINE_WIDTH: u32 = 2;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVu-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Series colours in drawing order: the Okabe–Ito colour-blind-safe palette, reordered so the
/// first colours contrast most on white (yellow, the weakest, comes last). Series beyond the
/// eighth reuse colours cyclically.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),   // blue
    (213, 94, 0),    // vermillion
    (0, 158, 115),   // bluish green
    (204, 121, 167), // reddish purple
    (230, 159, 0),   // orange
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

/// What draws a whole figure onto an SVG root area.
pub(crate) type DrawSvg<'a> =
    dyn for<'b> Fn(&DrawingArea<SVGBackend<'b>, Shift>) -> Result<(), String> + 'a;
/// What draws a whole figure onto a bitmap root area.
pub(crate) type DrawPng<'a> =
    dyn for<'b> Fn(&DrawingArea<BitMapBackend<'b>, Shift>) -> Result<(), String> + 'a;

/// A figure of `size` pixels drawn by `draw` as an SVG document; `path`
/// only labels errors.
pub(crate) fn render_svg_with(
    path: &Path,
    size: (u32, u32),
    draw: &DrawSvg<'_>,
) -> Result<String, ReportError> {
    ensure_font().map_err(|r| ReportError::plot(path, r))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root).map_err(|r| ReportError::plot(path, r))?;
    }
    Ok(svg)
}

/// A figure of `size` pixels drawn by `draw`, written as an RGB PNG to
/// `path` atomically: encoded into a temporary `.png` file beside `path`,
/// fsynced and renamed over it.
pub(crate) fn write_png_with(
    path: &Path,
    size: (u32, u32),
    draw: &DrawPng<'_>,
) -> Result<(), ReportError> {
    ensure_font().map_err(|r| ReportError::plot(path, r))?;
    let tmp = temp_sibling(path, ".png")?;
    {
        let root = BitMapBackend::new(tmp.path(), size).into_drawing_area();
        draw(&root).map_err(|r| ReportError::plot(path, r))?;
    }
    commit(tmp, path)
}

/// Registers the embedded font under [`FONT_FAMILY`] exactly once per process.
fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_owned())
        })
        .clone()
}

/// How a [`Series`] is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesStyle {
    /// A polyline through the points, in the order given.
    #[default]
    Line,
    /// One filled circle per point.
    Markers,
    /// A polyline with a circle on every point.
    LineMarkers,
}

impl SeriesStyle {
    fn has_line(self) -> bool {
        matches!(self, SeriesStyle::Line | SeriesStyle::LineMarkers)
    }

    fn has_markers(self) -> bool {
        matches!(self, SeriesStyle::Markers | SeriesStyle::LineMarkers)
    }
}

/// One named data series of a [`LinePlot`].
///
/// Points with a non-finite coordinate, or a non-positive coordinate on a log axis, are skipped
/// when drawing; a line is broken at such points rather than joined across them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend text; an empty name leaves the series out of the legend.
    pub name: String,
    /// `(x, y)` points, drawn in this order.
    pub points: Vec<(f64, f64)>,
    /// Line, markers or both.
    pub style: SeriesStyle,
    /// Draw the line dashed (ignored for [`SeriesStyle::Markers`]).
    pub dashed: bool,
}

impl Series {
    /// A series with the given style, solid line.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: SeriesStyle) -> Self {
        Self {
            name: name.into(),
            points,
            style,
            dashed: false,
        }
    }

    /// Builder: draw this series dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// A 2-D line/scatter chart, 900×600 px, rendered to SVG or PNG.
///
/// Axis ranges are computed from the drawable data with a 5 % margin (in log space for log axes).
/// The legend (series with a non-empty name) sits in whichever corner holds the fewest points, on
/// a white background. Series take colours from [`PALETTE`] in order. An optional caption is
/// word-wrapped under the chart in a small font (at most six lines). Plots whose series are empty
/// or hold no drawable point still render: empty axes over a default range.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LinePlot {
    /// Title drawn above the chart.
    pub title: String,
    /// Optional note drawn under the chart in a small font.
    pub caption: Option<String>,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// Logarithmic (base 10) x axis.
    pub log_x: bool,
    /// Logarithmic (base 10) y axis.
    pub log_y: bool,
    /// The data, drawn in order (later series on top).
    pub series: Vec<Series>,
}

/// A series reduced to what can be drawn: contiguous runs of valid points.
struct Prepared<'a> {
    name: &'a str,
    style: SeriesStyle,
    dashed: bool,
    color: RGBColor,
    runs: Vec<Vec<(f64, f64)>>,
}

impl Prepared<'_> {
    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.runs.iter().flatten().copied()
    }
}

impl LinePlot {
    /// A plot with linear axes, no caption and no series.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// Filters the series down to drawable points and assigns colours.
    fn prepare(&self) -> Vec<Prepared<'_>> {
        let valid = |(x, y): (f64, f64)| {
            x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
        };
        self.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                let mut runs = Vec::new();
                let mut run = Vec::new();
                for &p in &s.points {
                    if valid(p) {
                        run.push(p);
                    } else if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
                if !run.is_empty() {
                    runs.push(run);
                }
                Prepared {
                    name: &s.name,
                    style: s.style,
                    dashed: s.dashed,
                    color: RGBColor(r, g, b),
                    runs,
                }
            })
            .collect()
    }
}

/// A figure's caption, word-wrapped to the figure's width in a small grey
/// font (at most [`CAPTION_MAX_LINES`] lines), drawn under the chart.
pub(crate) struct Caption {
    lines: Vec<String>,
    style: TextStyle<'static>,
}

impl Caption {
    /// `text` wrapped to the width of `root` (no lines for no text).
    pub(crate) fn wrap<DB: DrawingBackend>(
        root: &DrawingArea<DB, Shift>,
        text: Option<&str>,
    ) -> Result<Self, String> {
        let style =
            TextStyle::from((FONT_FAMILY, CAPTION_SIZE).into_font()).color(&RGBColor(64, 64, 64));
        let (width, _) = root.dim_in_pixel();
        let lines = match text {
            Some(text) => wrap_text(
                text,
                width.saturating_sub(2 * CAPTION_PAD),
                CAPTION_MAX_LINES,
                |s| root.estimate_text_size(s, &style).map(|(w, _)| w),
            )
            .map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        Ok(Self { lines, style })
    }

    /// Pixels the caption takes at the bottom of the figure (0 without one).
    pub(crate) fn height(&self) -> u32 {
        if self.lines.is_empty() {
            0
        } else {
            self.lines.len() as u32 * CAPTION_LINE_HEIGHT + CAPTION_PAD
        }
    }

    /// Draws the lines into `area` (the strip of [`Caption::height`] pixels).
    pub(crate) fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), String> {
        for (i, line) in self.lines.iter().enumerate() {
            let y = (CAPTION_PAD / 2 + i as u32 * CAPTION_LINE_HEIGHT) as i32;
            area.draw_text(line, &self.style, (CAPTION_PAD as i32, y))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Everything [`ChartCtx::draw_chart`] needs besides the axes.
struct ChartCtx<'a> {
    plot: &'a LinePlot,
    prepared: &'a [Prepared<'a>],
    x_fmt: TickFormat,
    y_fmt: TickFormat,
    legend_pos: SeriesLabelPosition,
}

impl ChartCtx<'_> {
    /// Draws axes, series and legend; generic over linear/log coordinates.
    fn draw_chart<DB, X, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x: X,
        y: Y,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(84);
        if !self.plot.title.trim().is_empty() {
            builder.caption(&self.plot.title, (FONT_FAMILY, TITLE_SIZE));
        }
        let mut chart = builder.build_cartesian_2d(x, y)?;

        let x_fmt = |v: &f64| self.x_fmt.format(*v);
        let y_fmt = |v: &f64| self.y_fmt.format(*v);
        chart
            .configure_mesh()
            .x_desc(&self.plot.x_label)
            .y_desc(&self.plot.y_label)
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_SIZE))
            .label_style((FONT_FAMILY, TICK_SIZE))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(205, 205, 205))
            .draw()?;

        let mut any_label = false;
        for s in self.prepared {
            let line = s.color.stroke_width(LINE_WIDTH);
            if s.style.has_line() {
                for run in s.runs.iter().filter(|r| r.len() > 1) {
                    if s.dashed {
                        chart.draw_series(DashedLineSeries::new(
                            run.iter().copied(),
                            9,
                            6,
                            line,
                        ))?;
                    } else {
                        chart.draw_series(LineSeries::new(run.iter().copied(), line))?;
                    }
                }
            }
            if s.style.has_markers() {
                let fill = s.color.filled();
                chart.draw_series(s.points().map(|p| Circle::new(p, MARKER_RADIUS, fill)))?;
            }
            if !s.name.trim().is_empty() && !s.runs.is_empty() {
                any_label = true;
                let (icon_line, icon_marker) = legend_styles(s);
                // Solid: one continuous stroke in two halves; dashed: a visible gap.
                let gap = if s.dashed { 5 } else { 0 };
                chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                    .label(s.name)
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (13 - gap, 0)], icon_line)
                            + PathElement::new(vec![(13 + gap, 0), (26, 0)], icon_line)
                            + Circle::new((13, 0), MARKER_RADIUS, icon_marker)
                    });
            }
        }
        if any_label {
            chart
                .configure_series_labels()
                .position(self.legend_pos.clone())
                .legend_area_size(34)
                .margin(12)
                .label_font((FONT_FAMILY, LEGEND_SIZE))
                .background_style(WHITE.mix(0.92))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }
        Ok(())
    }
}

/// Line and marker styles of a series' legend icon (transparent where the style has none).
fn legend_styles(s: &Prepared<'_>) -> (ShapeStyle, ShapeStyle) {
    let none = ShapeStyle {
        color: TRANSPARENT,
        filled: false,
        stroke_width: 0,
    };
    let line = if s.style.has_line() {
        s.color.stroke_width(LINE_WIDTH)
    } else {
        none
    };
    let marker = if s.style.has_markers() {
        s.color.filled()
    } else {
        none
    };
    (line, marker)
}

/// Data range of `values` widened by 5 % on each side (in log10 space for a log axis).
///
/// With no values the range is `0..1` (linear) or `1..10` (log); a single distinct value is
/// widened to a non-empty range. The result is always finite with `start < end` (and
/// `start > 0` for a log axis) whenever the inputs allow it.
fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return if log { 1.0..10.0 } else { 0.0..1.0 };
    }
    let range = if log {
        let (llo, lhi) = (lo.log10(), hi.log10());
        let pad = if lhi > llo { 0.05 * (lhi - llo) } else { 0.3 };
        let a = 10f64.powf(llo - pad);
        let b = 10f64.powf(lhi + pad);
        let a = if a > 0.0 { a } else { lo };
        let b = if b.is_finite() { b } else { hi };
        // Keep end/start finite: plotters' log tick search loops (practically) forever on an
        // infinite ratio. Data spanning more than 300 decades loses its smallest values.
        a.max(b * 1e-300)..b
    } else {
        let span = hi - lo;
        let pad = if span > 0.0 && span.is_finite() {
            0.05 * span
        } else if lo == 0.0 {
            1.0
        } else {
            0.1 * lo.abs()
        };
        // Keep the span itself finite: plotters' tick search loops forever on an infinite span.
        let half = f64::MAX / 2.0;
        (lo - pad).max(-half)..(hi + pad).min(half)
    };
    if range.start < range.end {
        range
    } else if log {
        // Extremes of the f64 range; give plotters something non-degenerate.
        (lo * 0.5).max(f64::MIN_POSITIVE)..(hi * 2.0).min(f64::MAX)
    } else {
        (lo - lo.abs().max(1.0))..(hi + hi.abs().max(1.0))
    }
}

/// Chooses the legend corner that covers the fewest data points.
fn legend_corner(
    prepared: &[Prepared<'_>],
    x: &Range<f64>,
    y: &Range<f64>,
    log_x: bool,
    log_y: bool,
) -> SeriesLabelPosition {
    let norm = |v: f64, r: &Range<f64>, log: bool| {
        if log {
            (v.log10() - r.start.log10()) / (r.end.log10() - r.start.log10())
        } else {
            (v - r.start) / (r.end - r.start)
        }
    };
    // (position, x-interval, y-interval) of the corner box in normalised coordinates.
    let corners = [
        (SeriesLabelPosition::UpperRight, (0.6, 1.0), (0.65, 1.0)),
        (SeriesLabelPosition::UpperLeft, (0.0, 0.4), (0.65, 1.0)),
        (SeriesLabelPosition::LowerRight, (0.6, 1.0), (0.0, 0.35)),
        (SeriesLabelPosition::LowerLeft, (0.0, 0.4), (0.0, 0.35)),
    ];
    let mut counts = [0usize; 4];
    for (px, py) in prepared.iter().flat_map(Prepared::points) {
        let (nx, ny) = (norm(px, x, log_x), norm(py, y, log_y));
        for (count, (_, bx, by)) in counts.iter_mut().zip(&corners) {
            if nx >= bx.0 && nx <= bx.1 && ny >= by.0 && ny <= by.1 {
                *count += 1;
            }
        }
    }
    let best = (0..corners.len())
        .min_by_key(|&i| counts[i])
        .unwrap_or_default();
    corners[best].0.clone()
}

/// Tick-label formatting for one axis.
#[derive(Clone, Copy)]
pub(crate) struct TickFormat {
    log: bool,
    /// Decimal places for fixed notation on a linear axis.
    decimals: usize,
    /// Use scientific notation on a linear axis.
    scientific: bool,
}

impl TickFormat {
    pub(crate) fn new(range: &Range<f64>, log: bool) -> Self {
        let span = range.end - range.start;
        let magnitude = range.start.abs().max(range.end.abs());
        let decimals = if span > 0.0 && span.is_finite() {
            (2.0 - span.log10().floor()).clamp(0.0, 12.0) as usize
        } else {
            2
        };
        Self {
            log,
            decimals,
            scientific: magnitude >= 1e6 || (magnitude < 1e-3 && magnitude > 0.0),
        }
    }

    pub(crate) fn format(&self, v: f64) -> String {
        let s = if v == 0.0 {
            "0".to_owned()
        } else if self.log {
            format_sig(v, 3)
        } else if self.scientific {
            trim_exp(&format!("{v:.2e}"))
        } else {
            trim_zeros(&format!("{v:.*}", self.decimals))
        };
        if s == "-0" { "0".to_owned() } else { s }
    }
}

/// `v` with `sig` significant digits, scientific outside `[1e-3, 1e5)`, trailing zeros trimmed.
fn format_sig(v: f64, sig: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return trim_exp(&format!("{v:.*e}", sig.saturating_sub(1)));
    }
    let decimals = (sig as i32 - 1 - a.log10().floor() as i32).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}"))
}

/// Removes trailing zeros (and a trailing point) from a fixed-notation number.
fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// Trims the mantissa of a `{:e}`-formatted number: `1.50e-3` → `1.5e-3`.
fn trim_exp(s: &str) -> String {
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa)),
        None => s.to_owned(),
    }
}

/// Greedy word wrap of `text` into lines no wider than `max_width` pixels, as measured by
/// `measure`. Explicit newlines are kept. At most `max_lines` lines; the last is marked with `…`
/// if text was cut. A single word wider than the limit gets a line of its own.
pub(crate) fn wrap_text<E>(
    text: &str,
    max_width: u32,
    max_lines: usize,
    mut measure: impl FnMut(&str) -> Result<u32, E>,
) -> Result<Vec<String>, E> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut current = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if current.is_empty() {
                word.to_owned()
            } else {
                format!("{current} {word}")
            };
            if current.is_empty() || measure(&candidate)? <= max_width {
                current = candidate;
            } else {
                lines.push(std::mem::replace(&mut current, word.to_owned()));
            }
        }
        lines.push(current);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            last.push_str(" …");
        }
    }
    Ok(lines)
}

impl Draw for LinePlot {
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    /// Draws the whole figure (title, chart, legend, caption) onto `root` and presents it.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let prepared = self.prepare();
        let (_, height) = root.dim_in_pixel();

        let caption = Caption::wrap(root, self.caption.as_deref())?;
        let (chart_area, caption_area) =
            root.split_vertically(height.saturating_sub(caption.height()));

        let x_range = axis_range(
            prepared.iter().flat_map(|p| p.points().map(|q| q.0)),
            self.log_x,
        );
        let y_range = axis_range(
            prepared.iter().flat_map(|p| p.points().map(|q| q.1)),
            self.log_y,
        );
        let legend_pos = legend_corner(&prepared, &x_range, &y_range, self.log_x, self.log_y);
        let ctx = ChartCtx {
            plot: self,
            prepared: &prepared,
            x_fmt: TickFormat::new(&x_range, self.log_x),
            y_fmt: TickFormat::new(&y_range, self.log_y),
            legend_pos,
        };
        match (self.log_x, self.log_y) {
            (false, false) => ctx.draw_chart(&chart_area, x_range, y_range),
            (true, false) => ctx.draw_chart(&chart_area, x_range.log_scale(), y_range),
            (false, true) => ctx.draw_chart(&chart_area, x_range, y_range.log_scale()),
            (true, true) => ctx.draw_chart(&chart_area, x_range.log_scale(), y_range.log_scale()),
        }
        .map_err(|e| e.to_string())?;

        caption.draw(&caption_area)?;
        root.present().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Figure;

    fn sample_plot() -> LinePlot {
        let xs: Vec<f64> = (0..40).map(|i| 10f64.powf(-3.0 + i as f64 * 0.1)).collect();
        LinePlot {
            title: "Training loss vs regularization".into(),
            caption: Some(
                "Sample figure rendered by the pathreg-report tests: a log–log plot with three \
                 series, one dashed, one with markers only. NaN, infinite and non-positive points \
                 are skipped, so the lines break there instead of panicking. This caption is long \
                 on purpose so that it wraps onto several lines."
                    .into(),
            ),
            x_label: "regularization strength β".into(),
            y_label: "objective value".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::new(
                    "convex (Clarabel)",
                    xs.iter().map(|&x| (x, 1.0 + x * x)).collect(),
                    SeriesStyle::Line,
                ),
                Series::new(
                    "non-convex SGD",
                    xs.iter()
                        .enumerate()
                        .map(|(i, &x)| match i {
                            7 => (x, f64::NAN),
                            8 => (x, -1.0),
                            _ => (x, 1.3 + 2.0 * x * x),
                        })
                        .collect(),
                    SeriesStyle::LineMarkers,
                )
                .dashed(),
                Series::new(
                    "samples",
                    xs.iter().step_by(3).map(|&x| (x, 2.0 + x)).collect(),
                    SeriesStyle::Markers,
                ),
            ],
        }
    }

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

    fn png_dimensions(bytes: &[u8]) -> (u32, u32) {
        // IHDR is the first chunk: length(4) "IHDR"(4) width(4) height(4).
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        (w, h)
    }

    #[test]
    fn writes_log_scale_svg_with_title_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figs/plot.svg");
        sample_plot().write_svg(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
        assert!(svg.contains("Training loss vs regularization"));
        assert!(svg.contains("convex (Clarabel)"));
        assert!(svg.contains("non-convex SGD"));
        assert!(svg.contains("samples"));
        assert!(svg.contains("regularization strength β"));
        assert!(svg.contains("Sample figure rendered"));
        assert!(svg.contains("sans-serif"));
        // Only the SVG is left in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("figs"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("plot.svg")]);
    }

    #[test]
    fn writes_log_scale_png_that_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        sample_plot().write_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], &PNG_SIGNATURE);
        assert_eq!(png_dimensions(&bytes), (WIDTH, HEIGHT));
        assert!(bytes.len() > 10_000, "PNG only {} bytes", bytes.len());
        assert!(
            bytes.ends_with(&[0xae, 0x42, 0x60, 0x82]),
            "missing IEND CRC"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("plot.png")]);
        // A copy to look at by eye.
        let _ = std::fs::copy(
            &path,
            std::env::temp_dir().join("pathreg-report-sample.png"),
        );
    }

    #[test]
    fn text_is_rendered_in_png() {
        // With the font missing, plotters silently draws no text; compare against a plot with
        // empty strings to make sure glyphs produce pixels.
        let dir = tempfile::tempdir().unwrap();
        let with_text = sample_plot();
        let mut without = with_text.clone();
        without.title.clear();
        without.caption = None;
        without.x_label.clear();
        without.y_label.clear();
        let a = dir.path().join("a.png");
        let b = dir.path().join("b.png");
        with_text.write_png(&a).unwrap();
        without.write_png(&b).unwrap();
        let (la, lb) = (
            std::fs::metadata(&a).unwrap().len(),
            std::fs::metadata(&b).unwrap().len(),
        );
        assert!(la > lb + 2_000, "text adds too few bytes: {la} vs {lb}");
    }

    #[test]
    fn degenerate_plots_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut cases = vec![
            LinePlot::new("", "", ""),
            LinePlot {
                series: vec![Series::new("empty", vec![], SeriesStyle::Line)],
                ..LinePlot::new("empty series", "x", "y")
            },
            LinePlot {
                series: vec![Series::new(
                    "all bad",
                    vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (0.0, -1.0)],
                    SeriesStyle::LineMarkers,
                )],
                log_x: true,
                log_y: true,
                ..LinePlot::new("nothing drawable on log axes", "x", "y")
            },
            LinePlot {
                series: vec![Series::new("one", vec![(2.0, 3.0)], SeriesStyle::Line)],
                ..LinePlot::new("single point", "x", "y")
            },
            LinePlot {
                series: vec![Series::new(
                    "flat",
                    vec![(0.0, 0.0), (0.0, 0.0)],
                    SeriesStyle::Markers,
                )],
                ..LinePlot::new("zero span", "x", "y")
            },
            LinePlot {
                series: vec![Series::new(
                    "extremes",
                    vec![(f64::MIN, f64::MAX), (f64::MAX, f64::MIN), (0.0, 0.0)],
                    SeriesStyle::LineMarkers,
                )],
                ..LinePlot::new("extremes", "x", "y")
            },
            LinePlot {
                series: vec![Series::new(
                    "tiny",
                    vec![(5e-324, 5e-324), (f64::MAX, f64::MAX)],
                    SeriesStyle::LineMarkers,
                )],
                log_x: true,
                log_y: true,
                ..LinePlot::new("log extremes", "x", "y")
            },
        ];
        // Many series cycle through the palette.
        cases.push(LinePlot {
            series: (0..12)
                .map(|i| {
                    Series::new(
                        format!("s{i}"),
                        vec![(0.0, i as f64), (1.0, i as f64 + 1.0)],
                        SeriesStyle::Line,
                    )
                })
                .collect(),
            caption: Some("\n\n".into()),
            ..LinePlot::new("many | series", "x", "y")
        });
        // Render on a worker thread so that a hang in plotters fails the test instead of
        // blocking the test run.
        let out = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let titles: Vec<String> = cases.iter().map(|p| p.title.clone()).collect();
        std::thread::spawn(move || {
            for (i, plot) in cases.iter().enumerate() {
                let svg = plot.write_svg(&out.join(format!("{i}.svg")));
                let png = plot.write_png(&out.join(format!("{i}.png")));
                if tx.send((i, svg.and(png))).is_err() {
                    return;
                }
            }
        });
        for title in &titles {
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok((i, Ok(()))) => assert_eq!(&titles[i], title),
                Ok((i, Err(e))) => panic!("case {i} ({}): {e}", titles[i]),
                Err(e) => panic!("case `{title}` did not finish: {e}"),
            }
        }
    }

    #[test]
    fn png_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should go: the final rename fails.
        let target = dir.path().join("taken.png");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        let err = sample_plot().write_png(&target).unwrap_err();
        assert!(err.to_string().contains("taken.png"), "{err}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    }

    #[test]
    fn axis_ranges() {
        let r = axis_range([1.0, 3.0].into_iter(), false);
        assert!((r.start - 0.9).abs() < 1e-12 && (r.end - 3.1).abs() < 1e-12);
        let r = axis_range([1e-3, 1e3].into_iter(), true);
        assert!(r.start < 1e-3 && r.start > 1e-4 && r.end > 1e3 && r.end < 1e4);
        assert_eq!(axis_range(std::iter::empty(), false), 0.0..1.0);
        assert_eq!(axis_range(std::iter::empty(), true), 1.0..10.0);
        let r = axis_range([5.0].into_iter(), false);
        assert!(r.start < 5.0 && r.end > 5.0);
        let r = axis_range([5.0].into_iter(), true);
        assert!(r.start < 5.0 && r.end > 5.0 && r.start > 0.0);
        let r = axis_range([f64::MIN, f64::MAX].into_iter(), false);
        assert!((r.end - r.start).is_finite() && r.start < r.end);
        let r = axis_range([5e-324, f64::MAX].into_iter(), true);
        assert!((r.end / r.start).is_finite() && r.start > 0.0 && r.start < r.end);
    }

    #[test]
    fn tick_formatting() {
        let lin = TickFormat::new(&(0.0..1.0), false);
        assert_eq!(lin.format(0.25), "0.25");
        assert_eq!(lin.format(0.30000000000000004), "0.3");
        assert_eq!(lin.format(-0.0), "0");
        let big = TickFormat::new(&(0.0..2e7), false);
        assert_eq!(big.format(1.5e7), "1.5e7");
        assert_eq!(big.format(0.0), "0");
        let log = TickFormat::new(&(1e-6..1e2), true);
        assert_eq!(log.format(1e-6), "1e-6");
        assert_eq!(log.format(0.009999999999999998), "0.01");
        assert_eq!(log.format(100.0), "100");
        assert_eq!(log.format(2e5), "2e5");
    }

    #[test]
    fn wrapping() {
        let measure = |s: &str| Ok::<u32, ()>(s.chars().count() as u32);
        let lines = wrap_text("aa bb cc dd", 5, 10, measure).unwrap();
        assert_eq!(lines, vec!["aa bb", "cc dd"]);
        let lines = wrap_text("aaaaaaaa b", 5, 10, measure).unwrap();
        assert_eq!(lines, vec!["aaaaaaaa", "b"]);
        let lines = wrap_text("a\nb\nc\nd", 5, 2, measure).unwrap();
        assert_eq!(lines, vec!["a", "b …"]);
        assert!(wrap_text("  \n ", 5, 2, measure).unwrap().is_empty());
    }
}
