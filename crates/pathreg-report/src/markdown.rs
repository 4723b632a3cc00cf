//! GitHub-flavoured Markdown tables.

/// Renders a GitHub-flavoured Markdown table.
///
/// `header` gives the column titles and `rows` the already-formatted cells. The second line is the
/// alignment row (`|---|---|`). In every cell (header included) `|` is escaped as `\|` and line
/// breaks become spaces, so a cell can never break the table. Rows shorter than the header are
/// padded with empty cells; longer rows keep their extra cells (renderers ignore them). The result
/// ends with a newline.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    push_row(&mut out, header.iter().copied(), header.len());
    out.push('|');
    for _ in 0..header.len().max(1) {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        push_row(&mut out, row.iter().map(String::as_str), header.len());
    }
    out
}

fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>, width: usize) {
    out.push('|');
    let mut n = 0;
    for cell in cells {
        push_cell(out, cell);
        n += 1;
    }
    for _ in n..width.max(1) {
        push_cell(out, "");
    }
    out.push('\n');
}

fn push_cell(out: &mut String, cell: &str) {
    out.push(' ');
    let mut chars = cell.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push_str(" |");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_alignment_and_rows() {
        let md = markdown_table(
            &["method", "error"],
            &[
                vec!["convex".into(), "0.125".into()],
                vec!["sgd".into(), "0.5".into()],
            ],
        );
        assert_eq!(
            md,
            "| method | error |\n|---|---|\n| convex | 0.125 |\n| sgd | 0.5 |\n"
        );
    }

    #[test]
    fn escapes_pipes_and_newlines() {
        let md = markdown_table(&["a|b"], &[vec!["x | y\r\nz".into()]]);
        assert_eq!(md, "| a\\|b |\n|---|\n| x \\| y z |\n");
        // Every line has exactly the structural pipes plus escaped ones.
        for line in md.lines() {
            let unescaped = line.replace("\\|", "");
            assert_eq!(unescaped.matches('|').count(), 2, "{line}");
        }
    }

    #[test]
    fn pads_short_rows() {
        let md = markdown_table(&["a", "b", "c"], &[vec!["1".into()]]);
        assert_eq!(md, "| a | b | c |\n|---|---|---|\n| 1 |  |  |\n");
    }
}
