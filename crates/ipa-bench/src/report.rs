//! What the suite prints: one writer for everything, the fixed-width tables, and the targets
//! with their PASS or MISS.

/// Prints one line of the report on standard output.
// A command-line tool's product is its output: this is the one place the suite prints it.
#[allow(clippy::print_stdout)]
pub fn line(text: &str) {
    println!("{text}");
}

/// Prints a note (something the reader should know about how a figure was taken).
pub fn note(text: &str) {
    line(&format!("  note: {text}"));
}

/// Prints a section heading.
pub fn section(title: &str) {
    line("");
    line(&format!("== {title} =="));
}

/// A figure with `digits` decimals, or `-` when there is none.
pub fn figure(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:.digits$}"),
        _ => "-".to_owned(),
    }
}

/// PASS or MISS.
pub fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// A fixed-width table: a header, a rule, and rows, each cell padded to its column's width
/// (text columns left-aligned, the others right-aligned).
pub struct Table {
    headers: Vec<&'static str>,
    left: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first `left` columns are text.
    pub fn new(headers: &[&'static str], left: usize) -> Self {
        Self {
            headers: headers.to_vec(),
            left,
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines.
    pub fn render(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let format_row = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(index, cell)| {
                    let width = widths.get(index).copied().unwrap_or(0);
                    if index < self.left {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            padded.join(" | ").trim_end().to_owned()
        };
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let mut lines = vec![format_row(&headers)];
        lines.push(
            widths
                .iter()
                .map(|width| "-".repeat(*width))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        for row in &self.rows {
            lines.push(format_row(row));
        }
        lines
    }

    /// Prints the table.
    pub fn print(&self) {
        for text in self.render() {
            line(&text);
        }
    }
}

/// One target of the issue and how the run fared against it.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is checked.
    pub name: String,
    /// Met or not; `None` when it could not be measured in this run.
    pub pass: Option<bool>,
    /// The figures behind the verdict.
    pub detail: String,
}

/// The targets checked so far.
#[derive(Default)]
pub struct Targets(Vec<Target>);

impl Targets {
    /// Records a target.
    pub fn check(
        &mut self,
        name: impl Into<String>,
        pass: Option<bool>,
        detail: impl Into<String>,
    ) {
        self.0.push(Target {
            name: name.into(),
            pass,
            detail: detail.into(),
        });
    }

    /// Prints the summary.
    pub fn print(&self) {
        let mut table = Table::new(&["target", "verdict", "measured"], 3);
        for target in &self.0 {
            table.row(vec![
                target.name.clone(),
                target
                    .pass
                    .map_or("n/a".to_owned(), |pass| verdict(pass).to_owned()),
                target.detail.clone(),
            ]);
        }
        table.print();
        let missed = self.0.iter().filter(|t| t.pass == Some(false)).count();
        let passed = self.0.iter().filter(|t| t.pass == Some(true)).count();
        line(&format!("{passed} PASS, {missed} MISS"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut table = Table::new(&["operation", "conc", "req/s"], 1);
        table.row(vec!["get".to_owned(), "1".to_owned(), "123.4".to_owned()]);
        table.row(vec![
            "list by tag".to_owned(),
            "32".to_owned(),
            "9.0".to_owned(),
        ]);
        let lines = table.render();
        assert_eq!(lines[0], "operation   | conc | req/s");
        assert_eq!(lines[1], "------------+------+------");
        assert_eq!(lines[2], "get         |    1 | 123.4");
        assert_eq!(lines[3], "list by tag |   32 |   9.0");
    }

    #[test]
    fn figures_and_verdicts() {
        assert_eq!(figure(Some(1.234), 1), "1.2");
        assert_eq!(figure(None, 1), "-");
        assert_eq!(figure(Some(f64::NAN), 1), "-");
        assert_eq!(verdict(true), "PASS");
        assert_eq!(verdict(false), "MISS");
    }
}
