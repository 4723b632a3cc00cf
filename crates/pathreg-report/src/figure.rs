//! Writing a figure of this crate ([`LinePlot`](crate::LinePlot),
//! [`RegionPlot`](crate::RegionPlot), [`ForestPlot`](crate::ForestPlot)) as
//! an SVG document or an RGB PNG, atomically.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::ReportError;
use crate::atomic::write_atomic;
use crate::plot::{render_svg_with, write_png_with};

/// How a figure type lays itself out: not nameable outside this crate, so
/// [`Figure`] is implemented by this crate's figures only.
pub(crate) mod sealed {
    use super::*;

    /// A figure's size and drawing, on any plotters backend.
    pub trait Draw {
        /// Pixels, width × height.
        fn size(&self) -> (u32, u32);
        /// Draws the whole figure (title, chart, legend, caption) onto `root`.
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
    }
}

/// A figure that can be written as SVG or PNG.
pub trait Figure: sealed::Draw {
    /// The figure as an SVG document (text kept as text, font family
    /// `sans-serif`); `path` only labels errors.
    ///
    /// # Errors
    /// [`ReportError::Plot`] if drawing fails (a line plot with nothing to
    /// draw, a region plot whose values do not cover its grid).
    fn render_svg(&self, path: &Path) -> Result<String, ReportError> {
        render_svg_with(path, self.size(), &|root| self.draw(root))
    }

    /// Writes the figure as SVG to `path`, atomically.
    ///
    /// # Errors
    /// As [`Self::render_svg`], and [`ReportError::Io`] if the file cannot be
    /// written.
    fn write_svg(&self, path: &Path) -> Result<(), ReportError> {
        let svg = self.render_svg(path)?;
        write_atomic(path, svg.as_bytes())
    }

    /// Writes the figure as an RGB PNG to `path`, atomically: encoded into a
    /// temporary `.png` file beside `path`, fsynced and renamed over it.
    ///
    /// # Errors
    /// [`ReportError::Plot`] if drawing or encoding fails, [`ReportError::Io`]
    /// if the file cannot be written.
    fn write_png(&self, path: &Path) -> Result<(), ReportError> {
        write_png_with(path, self.size(), &|root| self.draw(root))
    }
}

impl<T: sealed::Draw> Figure for T {}
