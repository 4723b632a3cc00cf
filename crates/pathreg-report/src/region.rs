//! Decision regions of two-class models on a square grid, one panel per
//! model, with the training points on top, rendered with plotters to SVG and
//! PNG.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figure::sealed::Draw;
use crate::plot::{Caption, FONT_FAMILY, PALETTE, TICK_SIZE, TITLE_SIZE};

/// Width of one panel in pixels.
const PANEL_WIDTH: u32 = 520;
/// Height of the figure in pixels (title and caption included).
const HEIGHT: u32 = 640;
/// Panel title size.
const PANEL_TITLE_SIZE: f64 = 17.0;
/// Training-point radius.
const POINT_RADIUS: i32 = 5;

/// One model's panel.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionPanel {
    /// Shown above the panel.
    pub title: String,
    /// The model's output at the grid points, row-major from the bottom row
    /// (`values[r·grid + c]` at `(x_c, y_r)`); positive is the first class.
    pub values: Vec<f64>,
    /// Training points `(x, y, first class)`.
    pub points: Vec<(f64, f64, bool)>,
    /// A second model's output at the same grid points, drawn as its
    /// decision boundary: a dark dot between every two neighbouring grid
    /// points whose signs differ.
    pub boundary: Option<Vec<f64>>,
}

/// Panels side by side over the grid `[−extent, extent]²` of `grid × grid`
/// points (each drawn as the cell around it).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionPlot {
    /// Figure title.
    pub title: String,
    /// Text under the panels.
    pub caption: Option<String>,
    /// Points per side.
    pub grid: usize,
    /// Half the side of the square.
    pub extent: f64,
    /// The panels, left to right.
    pub panels: Vec<RegionPanel>,
}

impl RegionPlot {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &RegionPanel,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let e = self.extent;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .caption(&panel.title, (FONT_FAMILY, PANEL_TITLE_SIZE))
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(-e..e, -e..e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style((FONT_FAMILY, TICK_SIZE))
            .draw()?;
        let step = 2.0 * e / (self.grid - 1) as f64;
        let tint = |positive: bool| {
            let (r, g, b) = PALETTE[usize::from(!positive)];
            let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * 0.3) as u8;
            RGBColor(mix(r), mix(g), mix(b)).filled()
        };
        // One rectangle per run of equal class along a grid row.
        let mut rectangles = Vec::new();
        for r in 0..self.grid {
            let y = -e + r as f64 * step;
            let row = &panel.values[r * self.grid..(r + 1) * self.grid];
            let mut start = 0;
            for c in 1..=self.grid {
                if c == self.grid || (row[c] > 0.0) != (row[start] > 0.0) {
                    let x0 = (-e + (start as f64 - 0.5) * step).max(-e);
                    let x1 = (-e + (c as f64 - 0.5) * step).min(e);
                    let y0 = (y - 0.5 * step).max(-e);
                    let y1 = (y + 0.5 * step).min(e);
                    rectangles.push(Rectangle::new([(x0, y0), (x1, y1)], tint(row[start] > 0.0)));
                    start = c;
                }
            }
        }
        chart.draw_series(rectangles)?;
        if let Some(other) = &panel.boundary {
            let g = self.grid;
            let at = |i: usize| -e + i as f64 * step;
            let mut dots = Vec::new();
            for r in 0..g {
                for c in 0..g {
                    let here = other[r * g + c] > 0.0;
                    if c + 1 < g && (other[r * g + c + 1] > 0.0) != here {
                        dots.push((at(c) + 0.5 * step, at(r)));
                    }
                    if r + 1 < g && (other[(r + 1) * g + c] > 0.0) != here {
                        dots.push((at(c), at(r) + 0.5 * step));
                    }
                }
            }
            chart.draw_series(
                dots.into_iter()
                    .map(|p| Circle::new(p, 1, RGBColor(40, 40, 40).filled())),
            )?;
        }
        for positive in [true, false] {
            let (r, g, b) = PALETTE[usize::from(!positive)];
            let color = RGBColor(r, g, b);
            chart.draw_series(
                panel
                    .points
                    .iter()
                    .filter(|p| p.2 == positive)
                    .map(|&(x, y, _)| Circle::new((x, y), POINT_RADIUS, color.filled())),
            )?;
            chart.draw_series(
                panel
                    .points
                    .iter()
                    .filter(|p| p.2 == positive)
                    .map(|&(x, y, _)| Circle::new((x, y), POINT_RADIUS, BLACK.stroke_width(1))),
            )?;
        }
        Ok(())
    }
}

impl Draw for RegionPlot {
    /// One panel's width per panel.
    fn size(&self) -> (u32, u32) {
        (PANEL_WIDTH * self.panels.len().max(1) as u32, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let cells = self.grid * self.grid;
        if self.grid < 2
            || self.panels.iter().any(|p| {
                p.values.len() != cells || p.boundary.as_ref().is_some_and(|b| b.len() != cells)
            })
        {
            return Err(format!(
                "every panel needs {} × {} grid values",
                self.grid, self.grid
            ));
        }
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let caption = Caption::wrap(root, self.caption.as_deref())?;
        let titled = root
            .titled(&self.title, (FONT_FAMILY, TITLE_SIZE))
            .map_err(|e| e.to_string())?;
        let (_, titled_height) = titled.dim_in_pixel();
        let (panels_area, caption_area) =
            titled.split_vertically(titled_height.saturating_sub(caption.height()));
        let areas = panels_area.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            self.draw_panel(panel, area).map_err(|e| e.to_string())?;
        }
        caption.draw(&caption_area)?;
        root.present().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::Figure;

    fn plot() -> RegionPlot {
        let grid = 20;
        let values = (0..grid * grid)
            .map(|i| (i % grid) as f64 - 9.5)
            .collect::<Vec<_>>();
        RegionPlot {
            title: "regions".into(),
            caption: Some("a caption".into()),
            grid,
            extent: 1.0,
            panels: vec![
                RegionPanel {
                    title: "(a)".into(),
                    values: values.clone(),
                    points: vec![(0.5, 0.5, true), (-0.5, -0.5, false)],
                    boundary: None,
                },
                RegionPanel {
                    title: "(b)".into(),
                    values: values.clone(),
                    points: vec![],
                    boundary: Some(values),
                },
            ],
        }
    }

    #[test]
    fn panels_render_to_svg_and_png_with_one_rectangle_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let plot = plot();
        let svg = plot.render_svg(&dir.path().join("r.svg")).unwrap();
        // Two runs per row (negative left, positive right), 20 rows, 2 panels;
        // the second panel's boundary is one dot per row between columns 9 and 10.
        assert_eq!(svg.matches("<rect").count() - 1, 2 * 20 * 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2 * 2 + 20, "{svg}");
        assert!(svg.contains("(a)") && svg.contains("a caption"));
        plot.write_png(&dir.path().join("r.png")).unwrap();
        let png = std::fs::read(dir.path().join("r.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }

    #[test]
    fn values_that_do_not_cover_the_grid_are_an_error() {
        let mut plot = plot();
        plot.panels[0].values.pop();
        assert!(plot.render_svg(Path::new("r.svg")).is_err());
        let mut plot = self::plot();
        plot.panels[1].boundary.as_mut().unwrap().pop();
        assert!(plot.render_svg(Path::new("r.svg")).is_err());
    }
}
