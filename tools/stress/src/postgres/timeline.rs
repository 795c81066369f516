//! The fault run's timeline as SVG: operations and acknowledged successes
//! per second over the run, with a vertical line at each fault, so that a
//! reader sees each fault's dip and the recovery after it.

use plotters::prelude::*;
use std::time::Duration;

/// A fault on the timeline: when (from the run's start), and which.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub at: Duration,
    pub fault: &'static str,
}

/// What the timeline is drawn from.
pub struct Timeline<'a> {
    /// The run's length.
    pub run: Duration,
    /// Operations done by each moment (sampled by the coordinator).
    pub operations: &'a [(Duration, u64)],
    /// When each acknowledged success arrived.
    pub successes: &'a [Duration],
    pub marks: &'a [Mark],
    /// The chart's title.
    pub title: String,
}

/// The colour of each kind of fault's line.
fn colour(fault: &str) -> RGBColor {
    match fault {
        "kill" => RGBColor(0xd6, 0x27, 0x28),
        "zombie" => RGBColor(0x94, 0x67, 0xbd),
        "termination" => RGBColor(0xff, 0x7f, 0x0e),
        "crash" => RGBColor(0x8c, 0x56, 0x4b),
        _ => RGBColor(0x17, 0xbe, 0xcf),
    }
}

/// Per-second rates: `(second, rate)` for each whole second of the run.
fn per_second(run: Duration, operations: &[(Duration, u64)]) -> Vec<(f64, f64)> {
    let seconds = run.as_secs_f64().ceil() as usize;
    let done_by = |t: f64| {
        operations
            .iter()
            .take_while(|(at, _)| at.as_secs_f64() <= t)
            .last()
            .map_or(0, |(_, n)| *n)
    };
    (0..seconds)
        .map(|s| {
            let (from, to) = (s as f64, s as f64 + 1.0);
            (from + 0.5, done_by(to).saturating_sub(done_by(from)) as f64)
        })
        .collect()
}

/// Successes acknowledged in each second of the run.
fn successes_per_second(run: Duration, successes: &[Duration]) -> Vec<(f64, f64)> {
    let seconds = run.as_secs_f64().ceil() as usize;
    let mut counts = vec![0u64; seconds.max(1)];
    for at in successes {
        let s = (at.as_secs_f64() as usize).min(counts.len() - 1);
        counts[s] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(s, n)| (s as f64 + 0.5, *n as f64))
        .collect()
}

/// The SVG text of `timeline`.
pub fn svg(timeline: &Timeline<'_>) -> Result<String, String> {
    let mut out = String::new();
    draw(timeline, &mut out).map_err(|e| format!("timeline: {e}"))?;
    Ok(out)
}

fn draw(t: &Timeline<'_>, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let ops = per_second(t.run, t.operations);
    let wins = successes_per_second(t.run, t.successes);
    let top = ops.iter().chain(&wins).map(|(_, y)| *y).fold(1.0, f64::max) * 1.1;
    let end = t.run.as_secs_f64().max(1.0);
    let root = SVGBackend::with_string(out, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&t.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc("per second")
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()?;
    for (i, mark) in t.marks.iter().enumerate() {
        let x = mark.at.as_secs_f64();
        // Staggered, so that the names of faults close together stay legible.
        let label_y = top * (0.98 - 0.05 * (i % 4) as f64);
        let style = colour(mark.fault).stroke_width(1);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, top)],
            style,
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            mark.fault,
            (x, label_y),
            ("sans-serif", 11).into_font().color(&colour(mark.fault)),
        )))?;
    }
    let blue = RGBColor(0x1f, 0x77, 0xb4);
    let green = RGBColor(0x2c, 0xa0, 0x2c);
    chart
        .draw_series(LineSeries::new(ops, blue.stroke_width(2)))?
        .label("operations")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(wins, green.stroke_width(2)))?
        .label("successes acknowledged")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], green.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_whole_second_and_the_svg_marks_each_fault() {
        let s = Duration::from_secs;
        let operations = [(s(1), 10), (s(2), 30), (s(3), 30)];
        assert_eq!(
            per_second(s(3), &operations),
            [(0.5, 10.0), (1.5, 20.0), (2.5, 0.0)]
        );
        let successes = [Duration::from_millis(300), Duration::from_millis(2500)];
        assert_eq!(
            successes_per_second(s(3), &successes),
            [(0.5, 1.0), (1.5, 0.0), (2.5, 1.0)]
        );
        let marks = [Mark {
            at: s(2),
            fault: "failover",
        }];
        let text = svg(&Timeline {
            run: s(3),
            operations: &operations,
            successes: &successes,
            marks: &marks,
            title: "test".into(),
        })
        .unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(text.contains("failover"));
    }
}
