//! The report's text: Markdown (REPORT.md), one self-contained HTML page
//! (report.html, figures inlined as SVG, no external assets) and booktabs
//! LaTeX tables. The output holds no timestamp: the same results give the
//! same bytes.

use std::fmt::Write as _;
use std::path::Path;

use super::claims::{Grid, Section, Status};
use crate::PipelineError;

/// The report over all sections.
pub(super) struct Document<'s> {
    sections: &'s [Section],
}

const TITLE: &str = "Reproduction report: Ergen & Pilanci, Path Regularization (NeurIPS 2023)";

const INTRO: &str = "Built by `cargo xtask report` from what the runs left on disk (`outputs/<name>/results.csv`, \
`table.md`, `run.json`, the figures and `outputs/results.lock`); nothing is recomputed. Each of the paper's \
claims is checked on the recorded results: **holds**, **fails**, or **not run** (with the command that runs it).";

fn markdown_grid(out: &mut String, (header, rows): &Grid) {
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.push_str(&pathreg_report::markdown_table(&header, rows));
}

fn hash_line(label: &str, hash: &str, matches: Option<bool>) -> String {
    let short = &hash[..hash.len().min(16)];
    let verdict = match matches {
        Some(true) => "matches the lock",
        Some(false) => "**differs from the lock**",
        None => "not in the lock",
    };
    format!("{label} `{short}` ({verdict})")
}

fn provenance_text(section: &Section) -> String {
    let Some(p) = &section.provenance else {
        return "no run.json: provenance not recorded".into();
    };
    let (exact, rounded) = match p.matches_lock {
        Some((e, r)) => (Some(e), Some(r)),
        None => (None, None),
    };
    let commit = &p.commit[..p.commit.len().min(12)];
    format!(
        "commit `{commit}`; {}; {}; {:.2} s wall on {} threads ({} cache hits, {} computed); machine: {}",
        hash_line("exact hash", &p.exact, exact),
        hash_line("rounded hash", &p.rounded, rounded),
        p.wall_s,
        p.threads,
        p.cache.0,
        p.cache.1,
        p.machine.as_deref().unwrap_or("not recorded by this run")
    )
}

/// The key figure's files, relative to `outputs/`, that exist.
fn figure_files(outputs: &Path, section: &Section) -> (Option<String>, Option<String>) {
    let file = |ext: &str| {
        let rel = format!("{}/{}.{ext}", section.name, section.figure);
        outputs.join(&rel).is_file().then_some(rel)
    };
    (file("png"), file("svg"))
}

impl<'s> Document<'s> {
    pub fn new(sections: &'s [Section]) -> Self {
        Self { sections }
    }

    fn summary_rows(&self) -> Vec<Vec<String>> {
        self.sections
            .iter()
            .flat_map(|s| {
                s.claims.iter().map(move |c| {
                    vec![
                        format!("{} (`{}`)", s.heading, s.name),
                        c.text.to_string(),
                        format!("**{}**", c.status.label()),
                    ]
                })
            })
            .collect()
    }

    fn counts(&self) -> String {
        let count = |status: Status| {
            self.sections
                .iter()
                .flat_map(|s| &s.claims)
                .filter(|c| c.status == status)
                .count()
        };
        format!(
            "{} claims hold, {} fail, {} not run.",
            count(Status::Holds),
            count(Status::Fails),
            count(Status::NotRun)
        )
    }

    /// REPORT.md, with figures by relative path (PNG, SVG linked).
    pub fn markdown(&self, outputs: &Path) -> String {
        let mut out = format!("# {TITLE}\n\n{INTRO}\n\n## Summary\n\n");
        let _ = writeln!(out, "{}\n", self.counts());
        markdown_grid(
            &mut out,
            &(
                vec!["Experiment".into(), "Claim".into(), "Status".into()],
                self.summary_rows(),
            ),
        );
        for s in self.sections {
            let _ = writeln!(out, "\n## {} — `{}`\n", s.heading, s.name);
            if !s.ran() {
                let _ = writeln!(
                    out,
                    "**Not run**: there is no `outputs/{}/results.csv`. Run `{}`.\n",
                    s.name, s.command
                );
            } else if !s.description.is_empty() {
                let _ = writeln!(out, "{}\n", s.description);
            }
            match figure_files(outputs, s) {
                (Some(png), Some(svg)) => {
                    let _ = writeln!(out, "![{}]({png})\n\n[SVG]({svg})\n", s.name);
                }
                (None, Some(svg)) => {
                    let _ = writeln!(out, "![{}]({svg})\n", s.name);
                }
                (Some(png), None) => {
                    let _ = writeln!(out, "![{}]({png})\n", s.name);
                }
                (None, None) if s.ran() => {
                    let _ = writeln!(out, "(no `{}` figure on disk)\n", s.figure);
                }
                (None, None) => {}
            }
            let _ = writeln!(out, "**Paper.** {}\n", s.paper);
            if let Some(grid) = &s.headline {
                markdown_grid(&mut out, grid);
                out.push('\n');
            }
            let _ = writeln!(out, "**Claims.**\n");
            for c in &s.claims {
                let _ = writeln!(
                    out,
                    "- **{}**: {} ({})",
                    c.status.label(),
                    c.text,
                    c.evidence
                );
            }
            if s.ran() {
                let _ = writeln!(out, "\n**Provenance.** {}", provenance_text(s));
            }
        }
        out
    }

    /// report.html: the same content, one page, SVG inlined.
    pub fn html(&self, outputs: &Path) -> Result<String, PipelineError> {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>{}</p>\n<h2>Summary</h2>\n<p>{}</p>\n",
            escape(TITLE),
            escape(TITLE),
            inline(INTRO),
            escape(&self.counts())
        );
        html_grid(
            &mut out,
            &(
                vec!["Experiment".into(), "Claim".into(), "Status".into()],
                self.summary_rows(),
            ),
        );
        for s in self.sections {
            let _ = writeln!(
                out,
                "<section id=\"{}\">\n<h2>{} — <code>{}</code></h2>",
                s.name,
                escape(s.heading),
                s.name
            );
            if !s.ran() {
                let _ = writeln!(
                    out,
                    "<p class=\"not-run\"><strong>Not run</strong>: there is no <code>outputs/{}/results.csv</code>. Run <code>{}</code>.</p>",
                    s.name,
                    escape(&s.command)
                );
            } else if !s.description.is_empty() {
                let _ = writeln!(out, "<p>{}</p>", inline(&s.description));
            }
            if let (_, Some(svg)) = figure_files(outputs, s) {
                let path = outputs.join(&svg);
                let text = std::fs::read_to_string(&path).map_err(|source| PipelineError::Io {
                    path: path.clone(),
                    source,
                })?;
                let body = text
                    .find("<svg")
                    .map_or(text.as_str(), |start| &text[start..]);
                let _ = writeln!(
                    out,
                    "<figure class=\"figure\">{body}<figcaption>{}</figcaption></figure>",
                    escape(&svg)
                );
            }
            let _ = writeln!(out, "<p><strong>Paper.</strong> {}</p>", inline(s.paper));
            if let Some(grid) = &s.headline {
                html_grid(&mut out, grid);
            }
            let _ = writeln!(out, "<h3>Claims</h3>\n<ul>");
            for c in &s.claims {
                let class = c.status.label().replace(' ', "-");
                let _ = writeln!(
                    out,
                    "<li><span class=\"status {class}\">{}</span> {} ({})</li>",
                    c.status.label(),
                    escape(c.text),
                    escape(&c.evidence)
                );
            }
            out.push_str("</ul>\n");
            if s.ran() {
                let _ = writeln!(
                    out,
                    "<p class=\"provenance\"><strong>Provenance.</strong> {}</p>",
                    inline(&provenance_text(s))
                );
            }
            out.push_str("</section>\n");
        }
        let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
        Ok(out)
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left}\
th{background:#eee}figure{margin:1em 0}figure svg{max-width:100%;height:auto}\
.status{font-weight:bold;padding:0 .3em;border-radius:3px}.holds{background:#cfc}.fails{background:#fcc}\
.not-run{background:#eee}.provenance{font-size:90%;color:#444}#figure-warning{background:#fcc;padding:.5em}";

/// Checks, once the page has laid out, that every figure has a non-zero
/// size; records `data-figures="<rendered>/<all>"` on the body and shows a
/// warning when one is empty.
const SCRIPT: &str = "window.addEventListener('load',function(){var f=document.querySelectorAll('figure.figure svg'),n=0;\
f.forEach(function(s){var r=s.getBoundingClientRect();if(r.width>0&&r.height>0){n++;}});\
document.body.setAttribute('data-figures',n+'/'+f.length);if(n<f.length){var w=document.createElement('p');\
w.id='figure-warning';w.textContent=(f.length-n)+' figure(s) did not render.';document.body.prepend(w);}});";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**bold**` and `` `code` `` in escaped text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let escaped = escape(text);
    let mut bold = false;
    for (i, part) in escaped.split("**").enumerate() {
        if i > 0 {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
        }
        let mut code = false;
        for (j, piece) in part.split('`').enumerate() {
            if j > 0 {
                out.push_str(if code { "</code>" } else { "<code>" });
                code = !code;
            }
            out.push_str(piece);
        }
        if code {
            out.push_str("</code>");
        }
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

fn html_grid(out: &mut String, (header, rows): &Grid) {
    out.push_str("<table>\n<tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", inline(h));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", inline(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Text for pdflatex: the specials escaped, `**bold**` as `\textbf`, and
/// every non-ASCII character either mapped to its LaTeX form or, when
/// unknown, written as its code point (so the file always compiles).
fn latex(text: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    for (i, part) in text.split("**").enumerate() {
        if i > 0 {
            out.push_str(if bold { "}" } else { "\\textbf{" });
            bold = !bold;
        }
        let mut chars = part.chars().peekable();
        while let Some(c) = chars.next() {
            // A letter with a combining circumflex (X̂) is \hat in math mode.
            if chars.peek() == Some(&'\u{302}') && c.is_ascii_alphabetic() {
                chars.next();
                let _ = write!(out, "$\\hat{{{c}}}$");
                continue;
            }
            match c {
                '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                    out.push('\\');
                    out.push(c);
                }
                '~' => out.push_str("\\textasciitilde{}"),
                '^' => out.push_str("\\textasciicircum{}"),
                '\\' => out.push_str("\\textbackslash{}"),
                '`' => {}
                '±' => out.push_str("$\\pm$"),
                '–' => out.push_str("--"),
                '—' => out.push_str("---"),
                '≥' => out.push_str("$\\geq$"),
                '≤' => out.push_str("$\\leq$"),
                '×' => out.push_str("$\\times$"),
                '·' => out.push_str("$\\cdot$"),
                '−' => out.push_str("$-$"),
                '‖' => out.push_str("$\\|$"),
                '√' => out.push_str("$\\surd$"),
                '²' => out.push_str("$^2$"),
                '→' => out.push_str("$\\to$"),
                '…' => out.push_str("\\dots{}"),
                'σ' => out.push_str("$\\sigma$"),
                'β' => out.push_str("$\\beta$"),
                'λ' => out.push_str("$\\lambda$"),
                'μ' => out.push_str("$\\mu$"),
                'ρ' => out.push_str("$\\rho$"),
                'ᵀ' => out.push_str("$^\\top$"),
                '’' => out.push('\''),
                '“' => out.push_str("``"),
                '”' => out.push_str("''"),
                c if c.is_ascii() => out.push(c),
                c => {
                    let _ = write!(out, "[U+{:04X}]", c as u32);
                }
            }
        }
    }
    if bold {
        out.push('}');
    }
    out
}

/// The first table of `table.md` (the experiment's headline table, bold
/// marks included) as a booktabs table, captioned with its settings line.
pub(super) fn latex_table(
    outputs: &Path,
    section: &Section,
) -> Result<Option<String>, PipelineError> {
    let path = outputs.join(section.name).join("table.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let Some((header, rest)) = lines.split_first() else {
        return Ok(None);
    };
    let header = cells(header);
    let rows: Vec<Vec<String>> = rest
        .iter()
        .filter(|l| !l.trim_start_matches('|').starts_with("---"))
        .map(|l| cells(l))
        .collect();
    let columns = format!("l{}", "r".repeat(header.len().saturating_sub(1)));
    let join = |row: &[String]| row.iter().map(|c| latex(c)).collect::<Vec<_>>().join(" & ");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "% {}: generated by `cargo xtask report` from outputs/{}/table.md; needs \\usepackage{{booktabs}}.",
        section.name, section.name
    );
    let _ = writeln!(out, "\\begin{{table}}[ht]\n\\centering\n\\small");
    let _ = writeln!(out, "\\caption{{{}}}", latex(&section.description));
    let _ = writeln!(out, "\\label{{tab:{}}}", section.name.replace('_', "-"));
    let _ = writeln!(out, "\\begin{{tabular}}{{{columns}}}\n\\toprule");
    let _ = writeln!(out, "{} \\\\\n\\midrule", join(&header));
    for row in &rows {
        let _ = writeln!(out, "{} \\\\", join(row));
    }
    let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}\n\\end{{table}}");
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_escapes_marks_bold_and_never_leaves_unicode() {
        assert_eq!(latex("**0.713 ± 0.051**"), "\\textbf{0.713 $\\pm$ 0.051}");
        assert_eq!(latex("Rate (95 % CI)"), "Rate (95 \\% CI)");
        assert_eq!(latex("a_b & c"), "a\\_b \\& c");
        assert!(latex("λ ∞").is_ascii());
        assert_eq!(latex("X\u{302}_r"), "$\\hat{X}$\\_r");
    }

    #[test]
    fn html_inline_marks_bold_and_code_and_escapes() {
        assert_eq!(
            inline("**a** `b<c`"),
            "<strong>a</strong> <code>b&lt;c</code>"
        );
    }
}
