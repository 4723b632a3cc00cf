//! Forest plots: one row per item (a dataset, say), an estimate with its
//! confidence interval per group (an optimizer, say), and a dashed line at
//! zero, rendered with plotters to SVG and PNG.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figure::sealed::Draw;
use crate::plot::{
    AXIS_DESC_SIZE, Caption, FONT_FAMILY, LEGEND_SIZE, LINE_WIDTH, MARKER_RADIUS, PALETTE,
    TICK_SIZE, TITLE_SIZE, TickFormat,
};

/// Width of the figure in pixels.
const WIDTH: u32 = 900;
/// Pixels per row.
const ROW_HEIGHT: u32 = 26;
/// Pixels around the rows: title, axis, legend band and caption.
const FRAME_HEIGHT: u32 = 260;
/// Pixels left of the plotting area for the row names.
const NAME_AREA: u32 = 230;
/// Half the whisker's end cap, in pixels.
const CAP: i32 = 4;

/// One group's estimates, one per row.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestGroup {
    /// Legend text.
    pub name: String,
    /// `(estimate, interval low, interval high)` per row; a non-finite
    /// estimate leaves the row's marker out, a non-finite bound its whisker.
    pub estimates: Vec<(f64, f64, f64)>,
}

/// Rows from top to bottom, each with one marker and whisker per group
/// (offset vertically within the row), a dashed vertical line at zero and
/// the groups' legend in a band above the first row.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestPlot {
    /// Figure title.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Row names, top to bottom.
    pub rows: Vec<String>,
    /// The groups, in legend order.
    pub groups: Vec<ForestGroup>,
    /// Text under the chart.
    pub caption: Option<String>,
}

impl ForestPlot {
    /// The row's vertical position: the first row on top, one unit per row.
    fn row_y(&self, row: usize) -> f64 {
        (self.rows.len() - 1 - row) as f64
    }

    /// The group's vertical offset within a row, centred on the row.
    fn group_offset(&self, group: usize) -> f64 {
        let groups = self.groups.len().max(1) as f64;
        0.5 * ((group as f64 + 0.5) / groups - 0.5)
    }

    /// The x range: every finite estimate and bound, and zero, with a 5 % margin.
    fn x_range(&self) -> std::ops::Range<f64> {
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for (m, a, b) in self.groups.iter().flat_map(|g| g.estimates.iter()) {
            for v in [m, a, b].into_iter().filter(|v| v.is_finite()) {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
        }
        let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.1 };
        (lo - pad)..(hi + pad)
    }

    fn draw_chart<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let rows = self.rows.len() as f64;
        // One and a half rows above the first for the legend.
        let y_range = -0.6..(rows + 0.9);
        let x_range = self.x_range();
        let ticks = TickFormat::new(&x_range, false);
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .caption(&self.title, (FONT_FAMILY, TITLE_SIZE))
            .x_label_area_size(56)
            .y_label_area_size(NAME_AREA)
            .build_cartesian_2d(x_range, y_range.clone())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_max_light_lines(1)
            .x_label_formatter(&|v| ticks.format(*v))
            .x_desc(&self.x_label)
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_SIZE))
            .label_style((FONT_FAMILY, TICK_SIZE))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(205, 205, 205))
            .draw()?;

        let grey = RGBColor(90, 90, 90);
        chart.draw_series(DashedLineSeries::new(
            [(0.0, y_range.start), (0.0, rows - 0.4)],
            9,
            6,
            grey.stroke_width(1),
        ))?;

        let name_style = TextStyle::from((FONT_FAMILY, TICK_SIZE).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        let x_start = chart.x_range().start;
        for (row, name) in self.rows.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x_start, self.row_y(row)));
            area.draw(&Text::new(name.clone(), (px - 10, py), name_style.clone()))?;
        }

        for (gi, group) in self.groups.iter().enumerate() {
            let (r, g, b) = PALETTE[gi % PALETTE.len()];
            let color = RGBColor(r, g, b);
            let line = color.stroke_width(LINE_WIDTH);
            for (row, &(estimate, low, high)) in group.estimates.iter().enumerate() {
                let y = self.row_y(row) + self.group_offset(gi);
                if low.is_finite() && high.is_finite() {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(low, y), (high, y)],
                        line,
                    )))?;
                    for end in [low, high] {
                        chart.draw_series(std::iter::once(
                            EmptyElement::at((end, y))
                                + PathElement::new(vec![(0, -CAP), (0, CAP)], line),
                        ))?;
                    }
                }
                if estimate.is_finite() {
                    chart.draw_series(std::iter::once(Circle::new(
                        (estimate, y),
                        MARKER_RADIUS,
                        color.filled(),
                    )))?;
                }
            }
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(group.name.clone())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (26, 0)], line)
                        + Circle::new((13, 0), MARKER_RADIUS, color.filled())
                });
        }
        if !self.groups.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .legend_area_size(34)
                .margin(8)
                .label_font((FONT_FAMILY, LEGEND_SIZE))
                .background_style(WHITE.mix(0.92))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }
        Ok(())
    }
}

impl Draw for ForestPlot {
    /// The figure's size: taller with more rows.
    fn size(&self) -> (u32, u32) {
        (WIDTH, FRAME_HEIGHT + ROW_HEIGHT * self.rows.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if let Some(g) = self
            .groups
            .iter()
            .find(|g| g.estimates.len() != self.rows.len())
        {
            return Err(format!(
                "group {:?} has {} estimates for {} rows",
                g.name,
                g.estimates.len(),
                self.rows.len()
            ));
        }
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (_, height) = root.dim_in_pixel();
        let caption = Caption::wrap(root, self.caption.as_deref())?;
        let (chart_area, caption_area) =
            root.split_vertically(height.saturating_sub(caption.height()));
        self.draw_chart(&chart_area).map_err(|e| e.to_string())?;
        caption.draw(&caption_area)?;
        root.present().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::Figure;

    fn plot() -> ForestPlot {
        ForestPlot {
            title: "t".into(),
            x_label: "difference".into(),
            rows: vec!["first".into(), "second".into(), "third".into()],
            groups: vec![
                ForestGroup {
                    name: "SGD".into(),
                    estimates: vec![
                        (0.1, -0.1, 0.3),
                        (-0.2, -0.3, -0.1),
                        (0.0, f64::NEG_INFINITY, f64::INFINITY),
                    ],
                },
                ForestGroup {
                    name: "Adam".into(),
                    estimates: vec![(0.05, 0.0, 0.1), (f64::NAN, 0.0, 0.0), (0.2, 0.1, 0.3)],
                },
            ],
            caption: Some("a caption".into()),
        }
    }

    #[test]
    fn rows_legend_and_caption_are_drawn_and_infinite_intervals_skipped() {
        let p = plot();
        let svg = p.render_svg(Path::new("forest.svg")).unwrap();
        for text in [
            "first",
            "second",
            "third",
            "SGD",
            "Adam",
            "a caption",
            "difference",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        let range = p.x_range();
        assert!((range.start + 0.33).abs() < 1e-12 && (range.end - 0.33).abs() < 1e-12);
        assert!(p.row_y(0) > p.row_y(2));
        assert!(p.group_offset(0) < 0.0 && p.group_offset(1) > 0.0);
        let dir = tempfile::tempdir().unwrap();
        p.write_png(&dir.path().join("f.png")).unwrap();
        assert!(std::fs::metadata(dir.path().join("f.png")).unwrap().len() > 1000);
    }

    #[test]
    fn a_group_with_the_wrong_number_of_estimates_is_an_error() {
        let mut p = plot();
        p.groups[1].estimates.pop();
        let err = p
            .render_svg(Path::new("forest.svg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Adam") && err.contains("2 estimates for 3 rows"),
            "{err}"
        );
    }
}
