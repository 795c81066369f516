//! One SVG per key distribution: throughput against threads, a line per
//! contestant, solid for the 90/10 mix and dashed for 50/50, with the
//! thread counts beyond the machine's cores shaded.
//!
//! plotters draws with its SVG backend only: text sizes are estimated
//! without font files and the viewer renders the glyphs, so this runs on a
//! headless machine with no fonts installed.

use crate::read::Run;
use bench_report::{CONTENTION_THREADS, Contestant, Group, Keys, Mix};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// Colours by contestant, in table order.
const COLORS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// Pixels right of the plot for its legend.
const LEGEND_WIDTH: u32 = 200;

/// The file name of the plot of `keys`.
pub fn file_name(keys: Keys) -> String {
    format!("throughput_{}.svg", keys.as_str())
}

/// The plot of `keys` as an SVG document; `cores` shades the
/// oversubscribed thread counts.
pub fn svg(run: &Run, keys: Keys, cores: Option<usize>) -> Result<String, String> {
    let mut out = String::new();
    draw(run, keys, cores, &mut out).map_err(|e| format!("plot of {}: {e}", keys.as_str()))?;
    Ok(out)
}

fn draw(
    run: &Run,
    keys: Keys,
    cores: Option<usize>,
    out: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let threads = CONTENTION_THREADS;
    // Million operations per second from ns per operation.
    let mops = |mix: Mix, c: Contestant, t: u64| {
        run.get(Group::Contention(keys, mix), c, Some(t))
            .map(|ns| 1e3 / ns)
    };
    let top = Mix::ALL
        .into_iter()
        .flat_map(|mix| {
            Contestant::ALL
                .into_iter()
                .flat_map(move |c| threads.map(|t| mops(mix, c, t)))
        })
        .flatten()
        .fold(0.0f64, f64::max);
    let y_max = nice_ceiling(top.max(1e-3));
    let last = threads.len() as i32 - 1;

    let (width, height) = (860, 460);
    let root = SVGBackend::with_string(out, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let cores_text = cores.map_or(String::new(), |n| format!(" ({n} logical cores)"));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Throughput vs threads, keys {}{cores_text}", keys.as_str()),
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_right(LEGEND_WIDTH)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..last, 0.0..y_max)?;

    // Shade the thread counts above the core count.
    if let Some(first) = cores.and_then(|n| threads.iter().position(|&t| t as usize > n)) {
        let from = first as i32 - 1;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(from, 0.0), (last, y_max)],
            RGBColor(0xf0, 0xf0, 0xf0).filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            "oversubscribed",
            (from, y_max * 0.97),
            ("sans-serif", 12)
                .into_font()
                .color(&RGBColor(0x88, 0x88, 0x88)),
        )))?;
    }
    let thread_label = |i: &i32| {
        usize::try_from(*i)
            .ok()
            .and_then(|i| threads.get(i))
            .map_or(String::new(), u64::to_string)
    };
    chart
        .configure_mesh()
        .x_labels(threads.len())
        .x_label_formatter(&thread_label)
        .x_desc("threads")
        .y_desc("million operations / s")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .light_line_style(TRANSPARENT)
        .draw()?;

    let legend_left = width as i32 - LEGEND_WIDTH as i32 + 4;
    let legend_top = 60;
    for (m, mix) in Mix::ALL.into_iter().enumerate() {
        for (c, contestant) in Contestant::ALL.into_iter().enumerate() {
            let points: Vec<(i32, f64)> = threads
                .iter()
                .enumerate()
                .filter_map(|(i, &t)| Some((i as i32, mops(mix, contestant, t)?)))
                .collect();
            let style = COLORS[c % COLORS.len()].stroke_width(2);
            let label = format!("{} {}", contestant.label(), mix.as_str());
            // The legend sits beside the plot, in the right margin, so it
            // hides no line; plotters' own legend is clipped to the plot.
            let y = legend_top + 20 * (m * Contestant::ALL.len() + c) as i32;
            let sample = vec![(legend_left, y), (legend_left + 24, y)];
            if m == 0 {
                chart.draw_series(LineSeries::new(points.clone(), style))?;
                root.draw(&PathElement::new(sample, style))?;
            } else {
                chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?;
                root.draw(&DashedPathElement::new(sample, 6, 4, style))?;
            }
            root.draw(&Text::new(
                label,
                (legend_left + 32, y - 7),
                ("sans-serif", 13),
            ))?;
            chart.draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 3, COLORS[c % COLORS.len()].filled())),
            )?;
        }
    }
    root.present()?;
    Ok(())
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
/// power of ten) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{read_run, tests::fake_run};

    #[test]
    fn a_plot_has_every_contestant_and_mix_in_its_legend() {
        let dir = tempfile::tempdir().unwrap();
        fake_run(dir.path(), None);
        let run = read_run(dir.path()).unwrap();
        let svg = svg(&run, Keys::HotId, Some(2)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("keys hot_id (2 logical cores)"));
        assert!(svg.contains("oversubscribed"));
        for contestant in Contestant::ALL {
            for mix in Mix::ALL {
                let label = format!("{} {}", contestant.label(), mix.as_str());
                let escaped = label.replace('<', "&lt;").replace('>', "&gt;");
                assert!(svg.contains(&escaped), "no legend entry {label}");
            }
        }
        // A machine with more cores than any point shades nothing.
        let wide = super::svg(&run, Keys::HotId, Some(64)).unwrap();
        assert!(!wide.contains("oversubscribed"));
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(3.2), 4.0);
        assert_eq!(nice_ceiling(5.45), 6.0);
        assert!((nice_ceiling(0.011) - 0.015).abs() < 1e-12);
        assert_eq!(nice_ceiling(10.0), 10.0);
    }
}
