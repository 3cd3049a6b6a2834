//! Plain-text tables for terminals: left-aligned columns separated by two spaces, widths
//! counted in characters, no trailing whitespace.

/// Renders `headers` and `rows` as aligned text, one line each, ending with a newline.
/// Rows shorter than the header are padded with empty cells.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<&str> = headers.to_vec();
    push_line(&mut out, &header_cells, &widths);
    for row in rows {
        let cells: Vec<&str> = (0..widths.len())
            .map(|i| row.get(i).map(String::as_str).unwrap_or(""))
            .collect();
        push_line(&mut out, &cells, &widths);
    }
    out
}

fn push_line(out: &mut String, cells: &[&str], widths: &[usize]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        let pad = width.saturating_sub(cell.chars().count());
        line.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn aligns_columns_to_the_widest_cell() {
        let text = render(
            &["ID", "NAME"],
            &[row(&["1", "alpha"]), row(&["1000", "b"])],
        );
        assert_eq!(text, "ID    NAME\n1     alpha\n1000  b\n");
    }

    #[test]
    fn header_only_and_short_rows() {
        assert_eq!(render(&["A", "B"], &[]), "A  B\n");
        assert_eq!(render(&["A", "B"], &[row(&["x"])]), "A  B\nx\n");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let text = render(&["Z", "N"], &[row(&["zürich", "1"])]);
        assert_eq!(text, "Z       N\nzürich  1\n");
    }
}
