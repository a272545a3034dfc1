//! Bar charts as inline SVG, drawn on the server: no chart library, no script. Each chart is an
//! image with a text title for screen readers; the page shows the numbers as a table too.

use std::fmt::Write as _;

use super::html::text;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 160.0;
/// Room below the bars for the day labels.
const LABEL_ROOM: f64 = 18.0;

/// One bar: its label (a day) and value.
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// A bar chart of `bars` titled `title`; `format` writes a value for the bars' tooltips.
pub fn bar_chart(id: &str, title: &str, bars: &[Bar], format: impl Fn(f64) -> String) -> String {
    let max = bars.iter().map(|bar| bar.value).fold(0.0_f64, f64::max);
    let slot = if bars.is_empty() {
        WIDTH
    } else {
        WIDTH / bars.len() as f64
    };
    let plot_height = HEIGHT - LABEL_ROOM;
    let mut shapes = String::new();
    for (index, bar) in bars.iter().enumerate() {
        let height = if max > 0.0 {
            (bar.value / max) * (plot_height - 4.0)
        } else {
            0.0
        };
        let x = index as f64 * slot + slot * 0.15;
        let _ = write!(
            shapes,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{height:.1}"><title>{label}: {value}</title></rect>"#,
            y = plot_height - height,
            w = slot * 0.7,
            label = text(&bar.label),
            value = text(&format(bar.value)),
        );
        // Every other label, so they do not overlap on a laptop screen.
        if index % 2 == 0 || bars.len() <= 7 {
            let _ = write!(
                shapes,
                r#"<text class="axis" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
                cx = x + slot * 0.35,
                ty = HEIGHT - 4.0,
                label = text(&bar.label),
            );
        }
    }
    format!(
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{title} (highest {max})</title><line class="axis" x1="0" y1="{base}" x2="{WIDTH}" y2="{base}"></line>{shapes}</svg>"#,
        title = text(title),
        max = text(&format(max)),
        base = plot_height,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tallest_bar_fills_the_plot_and_labels_are_escaped() {
        let bars = [
            Bar {
                label: "<a>".into(),
                value: 2.0,
            },
            Bar {
                label: "b".into(),
                value: 1.0,
            },
        ];
        let svg = bar_chart("c", "Merged", &bars, |v| format!("{v}"));
        assert!(svg.contains("&lt;a&gt;"), "{svg}");
        assert!(!svg.contains("<a>"), "{svg}");
        assert!(svg.contains(r#"height="138.0""#), "{svg}");
        assert!(svg.contains(r#"height="69.0""#), "{svg}");
    }
}
