//! `latency.png`: every client operation's latency against the time it was invoked, with
//! the fault windows shaded behind, so a reader sees what each fault did to the cluster.
//!
//! Drawn with plotters' bitmap backend and no system font libraries: text needs a
//! TrueType font, looked up at run time under /usr/share/fonts (DejaVu Sans or Liberation
//! Sans preferred). Without one the chart is drawn without any text (axes as plain grid
//! lines at powers of ten and every 10 s) rather than not at all.
//!
//! Colours: ok operations blue, failed red, unknown (info) orange; fault windows tinted
//! by kind (kill and zone red, pause purple, partition blue, slow yellow).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::history::{History, Outcome};
use crate::run::report::{fault_windows, latency_ms, FaultWindow};

const SIZE: (u32, u32) = (1400, 700);
const OK_COLOR: RGBColor = RGBColor(31, 119, 180);
const FAIL_COLOR: RGBColor = RGBColor(214, 39, 40);
const INFO_COLOR: RGBColor = RGBColor(255, 127, 14);

/// Where a usable font may live.
const FONT_ROOT: &str = "/usr/share/fonts";
const PREFERRED_FONTS: [&str; 3] = [
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "FreeSans.ttf",
];

/// Registers a font for plotters once; whether text can be drawn.
fn fonts_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let Some(path) = find_font(Path::new(FONT_ROOT)) else {
            return false;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            return false;
        };
        // plotters keeps registered fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// A preferred regular sans font under `root`, else any `.ttf` file there.
fn find_font(root: &Path) -> Option<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("ttf"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    let named = |name: &str| {
        found
            .iter()
            .find(|p| p.file_name().is_some_and(|f| f == name))
            .cloned()
    };
    PREFERRED_FONTS
        .iter()
        .find_map(|name| named(name))
        .or_else(|| found.first().cloned())
}

/// A fault's label on the chart: partitions as `cut <kind>`.
fn short_name(fault: &str) -> String {
    match fault.strip_prefix("partition-") {
        Some("majority-minority") => "cut minority".to_string(),
        Some(kind) => format!("cut {kind}"),
        None => fault.to_string(),
    }
}

fn fault_color(fault: &str) -> RGBColor {
    match fault {
        f if f.starts_with("partition") => RGBColor(70, 130, 230),
        "pause" => RGBColor(150, 80, 200),
        "slow" => RGBColor(230, 190, 30),
        "heal-all" => RGBColor(120, 120, 120),
        _ => RGBColor(230, 60, 60),
    }
}

/// One dot per completed client operation: (invoked s, latency ms, outcome colour).
fn points(history: &History) -> Vec<(f64, f64, RGBColor)> {
    history
        .client_ops()
        .filter_map(|op| {
            let latency = latency_ms(op)?;
            let at = op.wall.invoked_us? as f64 / 1e6;
            let color = match op.outcome {
                Outcome::Ok(_) => OK_COLOR,
                Outcome::Fail => FAIL_COLOR,
                Outcome::Info => INFO_COLOR,
            };
            Some((at, latency.max(0.01), color))
        })
        .collect()
}

/// Draws the chart for `history` into `path` (PNG).
pub fn latency_png(path: &Path, history: &History, title: &str) -> Result<(), String> {
    let text = fonts_available();
    let points = points(history);
    let windows = fault_windows(history);
    let end_s = points
        .iter()
        .map(|p| p.0)
        .chain(
            windows
                .iter()
                .filter_map(|w| w.end_us)
                .map(|us| us as f64 / 1e6),
        )
        .fold(1.0f64, f64::max)
        * 1.02;
    let low_ms = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let low_ms = if low_ms.is_finite() {
        low_ms.max(0.05) / 1.5
    } else {
        0.1
    };
    let high_ms = points.iter().map(|p| p.1).fold(10.0f64, f64::max) * 1.5;

    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..end_s, (low_ms..high_ms).log_scale())
        .map_err(|e| e.to_string())?;

    if text {
        chart
            .configure_mesh()
            .x_desc("seconds since start (operation invoked)")
            .y_desc("latency (ms, log scale)")
            .label_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
    } else {
        draw_plain_grid(&mut chart, end_s, low_ms, high_ms)?;
    }

    chart
        .draw_series(
            windows
                .iter()
                .map(|w| window_shape(w, end_s, low_ms, high_ms)),
        )
        .map_err(|e| e.to_string())?;
    if text {
        chart
            .draw_series(windows.iter().filter(|w| w.fault != "heal-all").map(|w| {
                Text::new(
                    short_name(&w.fault),
                    (w.start_us as f64 / 1e6, high_ms / 1.3),
                    ("sans-serif", 13).into_font().color(&fault_color(&w.fault)),
                )
            }))
            .map_err(|e| e.to_string())?;
    }

    for (color, label) in [
        (OK_COLOR, "ok"),
        (FAIL_COLOR, "fail"),
        (INFO_COLOR, "unknown"),
    ] {
        let series = chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2 == color)
                    .map(|p| Circle::new((p.0, p.1), 2, color.mix(0.6).filled())),
            )
            .map_err(|e| e.to_string())?;
        if text {
            series
                .label(label)
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn window_shape(w: &FaultWindow, end_s: f64, low_ms: f64, high_ms: f64) -> Rectangle<(f64, f64)> {
    let from = w.start_us as f64 / 1e6;
    let to = w
        .end_us
        .map_or(end_s, |us| us as f64 / 1e6)
        .max(from + end_s / 500.0);
    Rectangle::new(
        [(from, low_ms), (to, high_ms)],
        fault_color(&w.fault).mix(0.18).filled(),
    )
}

type LogChart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

/// Grid lines with no text: every power of ten of latency, every 10 s.
fn draw_plain_grid(
    chart: &mut LogChart<'_>,
    end_s: f64,
    low_ms: f64,
    high_ms: f64,
) -> Result<(), String> {
    let grey = RGBColor(200, 200, 200);
    let mut decade = 10f64.powf(low_ms.log10().ceil());
    while decade < high_ms {
        chart
            .draw_series(LineSeries::new([(0.0, decade), (end_s, decade)], grey))
            .map_err(|e| e.to_string())?;
        decade *= 10.0;
    }
    let mut second = 0.0;
    while second < end_s {
        chart
            .draw_series(LineSeries::new([(second, low_ms), (second, high_ms)], grey))
            .map_err(|e| e.to_string())?;
        second += 10.0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{NemesisAction, NemesisEvent, Op, OpResult, ProcessId, Recorder};

    #[test]
    fn draws_a_png_with_or_without_fonts() {
        let rec = Recorder::new();
        let fault = rec.invoke(
            ProcessId(u64::MAX),
            Op::Nemesis(NemesisEvent {
                action: NemesisAction::Start,
                fault: "kill".into(),
                nodes: vec![1],
                detail: String::new(),
            }),
        );
        rec.complete(fault, Outcome::Ok(OpResult::Done)).unwrap();
        for i in 0..50 {
            let id = rec.invoke_keyed(ProcessId(i % 3), "k", Op::Write(i));
            std::thread::sleep(std::time::Duration::from_micros(200));
            let outcome = match i % 10 {
                0 => Outcome::Fail,
                1 => Outcome::Info,
                _ => Outcome::Ok(OpResult::Done),
            };
            rec.complete(id, outcome).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.png");
        latency_png(&path, &rec.history(), "test").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // An empty history still gives a chart.
        latency_png(&path, &History::new(), "empty").unwrap();
    }

    #[test]
    fn a_preferred_font_is_found_before_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/Aardvark.ttf"), b"").unwrap();
        std::fs::write(dir.path().join("a/b/DejaVuSans.ttf"), b"").unwrap();
        assert_eq!(
            find_font(dir.path()).unwrap().file_name().unwrap(),
            "DejaVuSans.ttf"
        );
        assert_eq!(find_font(&dir.path().join("none")), None);
    }
}
