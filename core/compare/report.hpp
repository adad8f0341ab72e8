// A comparison's plots and report: SVG line charts (one line per variant, the mean
// over seeds, in a min-max band) and one self-contained report.html holding the
// table and every chart, readable with no network and no script.
#pragma once

#include "compare/compare.hpp"

#include <string>
#include <vector>

namespace bp {

// `s` with <, >, & and " escaped for HTML.
std::string html_escape(const std::string& s);

// One line of a chart: points (x, mean y) with the band [low, high] at each x.
struct PlotSeries {
    std::string name;
    std::vector<double> x, mean, low, high;
    bool points = false;   // each (x, mean) a dot (<circle class="point">), no line or band
};

// An SVG document, 640x400 (wider for long legend names), axes with round ticks, a legend; every line is a
// <path class="line" data-series="NAME">, every band a <path class="band">.
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<PlotSeries>& series);

// One row per entry: its mean as a dot, its interval as a bar, on one x axis; `mark`
// is printed after the row's name (e.g. "best"). Each bar is a <line class="interval"
// data-series="NAME">.
struct IntervalRow {
    std::string name, mark;
    double mean, low, high;
};
std::string svg_interval_chart(const std::string& title, const std::string& x_label, const std::vector<IntervalRow>& rows);

// Writes final_accuracy_ci.svg (each variant's mean final accuracy with its 95%
// interval), loss_vs_epoch.svg, accuracy_vs_epoch.svg, loss_vs_time.svg,
// accuracy_vs_time.svg, sensitivity_<k>.svg per swept key (final accuracy against
// the swept value, DeepOBS's learning-rate sensitivity), loss_vs_step.svg,
// grad_norm_vs_step.svg and update_ratio_vs_step.svg when the runs wrote steps.csv
// (train.diagnostics_every), search_<k>.svg per searched
// key (each trial's final tuning metric against its value) and report.html, which
// also lists the trials, into r.dir; returns the report's path.
std::filesystem::path write_comparison_report(const Comparison& c, const ComparisonResult& r);

}  // namespace bp
