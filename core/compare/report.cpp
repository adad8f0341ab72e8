#include "compare/report.hpp"

#include "train/run_files.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bp {

namespace fs = std::filesystem;

namespace {

// Tableau 10: distinct for up to ten variants, then repeated.
const char* const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

}  // namespace

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

namespace {

std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
    const double span = hi - lo;
    const double raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
    std::vector<double> out;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
    return out;
}

// Mean and band of `value(history[e])` over the runs of one variant, at each epoch
// every run reached; x is the epoch, or the mean wall time at its end.
PlotSeries series_of(const std::string& variant, const std::vector<const ComparisonRun*>& runs, bool by_time,
                     Metric metric) {
    PlotSeries s{variant, {}, {}, {}, {}};
    std::size_t epochs = SIZE_MAX;
    for (const auto* r : runs) epochs = std::min(epochs, r->result.history.size());
    if (epochs == SIZE_MAX) return s;
    std::vector<double> clock(runs.size(), 0.0);
    for (std::size_t e = 0; e < epochs; ++e) {
        double sum = 0, lo = INFINITY, hi = -INFINITY, t = 0;
        int n = 0;
        for (std::size_t i = 0; i < runs.size(); ++i) {
            const EpochMetrics& m = runs[i]->result.history[e];
            clock[i] += m.seconds;
            t += clock[i];
            const double v = m.get(metric);
            if (!std::isfinite(v)) continue;
            sum += v, lo = std::min(lo, v), hi = std::max(hi, v), ++n;
        }
        if (n == 0) continue;
        s.x.push_back(by_time ? t / double(runs.size()) : double(e + 1));
        s.mean.push_back(sum / n), s.low.push_back(lo), s.high.push_back(hi);
    }
    return s;
}

// The terminal table's cells, so both say the same.
std::string html_table(const Comparison& c, const ComparisonResult& r) {
    const ComparisonTable t = comparison_rows(c, r);
    std::string out = "<table>\n<tr>";
    for (const auto& cell : t.header) out += "<th>" + html_escape(cell) + "</th>";
    out += "</tr>\n";
    for (const auto& row : t.rows) {
        out += "<tr>";
        for (const auto& cell : row) out += "<td>" + html_escape(cell) + "</td>";
        out += "</tr>\n";
    }
    out += "</table>\n";
    for (const auto& note : t.notes) out += "<p class=\"note\">" + html_escape(note) + "</p>\n";
    return out;
}

// One column of a run's steps.csv against its step column; empty without the file.
std::vector<std::pair<double, double>> step_column(const fs::path& file, const std::string& column) {
    std::ifstream in(file);
    std::string line;
    if (!std::getline(in, line)) return {};
    std::vector<std::string> names;
    std::stringstream header(line);
    for (std::string cell; std::getline(header, cell, ',');) names.push_back(cell);
    const auto at = std::size_t(std::find(names.begin(), names.end(), column) - names.begin());
    std::vector<std::pair<double, double>> out;
    while (std::getline(in, line)) {
        std::stringstream row(line);
        std::vector<double> cells;
        for (std::string cell; std::getline(row, cell, ',');) cells.push_back(std::strtod(cell.c_str(), nullptr));
        if (at < cells.size()) out.emplace_back(cells[0], cells[at]);
    }
    return out;
}

// Per-step charts from the runs' steps.csv (train.diagnostics_every): each variant's
// mean over its seeds at every logged step, in a min-max band; `log` plots log10.
std::string step_charts(const Comparison& c, const ComparisonResult& r) {
    struct Chart {
        const char* column;
        bool log;
        const char* title;
    };
    const Chart charts[] = {{"loss", false, "Training loss per step (the batch's)"},
                            {"grad_norm", true, "Gradient norm per step"},
                            {"update_ratio", true, "Update-to-weight ratio per step"}};
    std::string html;
    for (const auto& chart : charts) {
        std::vector<PlotSeries> series;
        bool any = false;
        for (const auto& variant : c.variants) {
            std::vector<std::vector<std::pair<double, double>>> runs;
            for (const auto& run : r.runs)
                if (run.variant == variant && run.error.empty() && !run.result.diverged)
                    runs.push_back(step_column(run.result.dir / "steps.csv", chart.column));
            PlotSeries s{variant, {}, {}, {}, {}};
            std::size_t steps = runs.empty() ? 0 : SIZE_MAX;
            for (const auto& run : runs) steps = std::min(steps, run.size());
            for (std::size_t i = 0; i < steps; ++i) {
                double sum = 0, lo = INFINITY, hi = -INFINITY;
                int n = 0;
                for (const auto& run : runs) {
                    const double v = chart.log ? std::log10(run[i].second) : run[i].second;
                    if (!std::isfinite(v)) continue;
                    sum += v, lo = std::min(lo, v), hi = std::max(hi, v), ++n;
                }
                if (n == 0) continue;
                s.x.push_back(runs[0][i].first);
                s.mean.push_back(sum / n), s.low.push_back(lo), s.high.push_back(hi);
            }
            any |= !s.x.empty();
            series.push_back(std::move(s));
        }
        if (!any) continue;
        const std::string file = std::string(chart.column) + "_vs_step.svg";
        const std::string svg = svg_line_chart(chart.title, "step", chart.log ? "log10(" + std::string(chart.column) + ")" : chart.column, series);
        write_file_atomic(r.dir / file, svg);
        html += "<div class=\"chart\" id=\"" + std::string(chart.column) + "_vs_step\">\n" + svg + "</div>\n";
    }
    return html;
}

// A number, or NaN for a word (a choice such as a name).
double numeric(const std::string& text) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    return end && *end == '\0' && end != text.c_str() ? v : std::nan("");
}

// The trials: a table per tuned variant, and per searched key a chart of every
// trial's final tuning metric against its value.
std::string tuning_section(const Comparison& c, const ComparisonResult& r) {
    if (c.tuned.empty()) return "";
    const std::string metric = to_string(c.tuning->metric);
    std::string html = "<h2>Tuning</h2>\n<p>Each variant's trials, drawn from its search space and trained with seed " +
                       std::to_string(c.tuning->seed) + "; the best final " + metric +
                       " (validation, never test) chose the hyperparameters its seeds then ran with.</p>\n";
    std::vector<std::string> keys;
    std::size_t at = 0;
    for (std::size_t k = 0; k < c.tuned.size(); ++k) {
        const TunedVariant& tv = c.tuned[k];
        html += "<table class=\"trials\">\n<caption>" + html_escape(c.variants[tv.variant]) + "</caption>\n<tr><th>trial</th>";
        for (const auto& d : tv.space) {
            html += "<th>" + html_escape(d.key) + "</th>";
            if (std::find(keys.begin(), keys.end(), d.key) == keys.end()) keys.push_back(d.key);
        }
        html += "<th>final " + html_escape(metric) + "</th><th></th></tr>\n";
        for (std::size_t t = 0; t < tv.trials.size(); ++t) {
            const ComparisonRun& run = r.trials[at + t];
            const auto& h = run.result.history;
            const bool ok = run.error.empty() && !run.result.diverged && !h.empty();
            html += "<tr><td>" + std::to_string(t + 1) + "</td>";
            for (const auto& v : tv.trials[t].values) html += "<td>" + html_escape(v) + "</td>";
            html += "<td>" + (ok ? fmt(h.back().get(c.tuning->metric)) : !run.error.empty() ? "failed" : "diverged") +
                    "</td><td>" + (r.chosen[k] == int(t) ? "chosen" : "") + "</td></tr>\n";
        }
        html += "</table>\n";
        at += tv.trials.size();
    }
    for (std::size_t n = 0; n < keys.size(); ++n) {
        std::vector<PlotSeries> series;
        bool log = false;   // on a log axis when any variant searches the key on a log scale
        for (const auto& tv : c.tuned)
            for (const auto& d : tv.space) log |= d.key == keys[n] && d.kind == SearchDimension::Kind::log_uniform;
        at = 0;
        for (const auto& tv : c.tuned) {
            for (std::size_t d = 0; d < tv.space.size(); ++d) {
                if (tv.space[d].key != keys[n]) continue;
                PlotSeries s{c.variants[tv.variant], {}, {}, {}, {}, true};
                for (std::size_t t = 0; t < tv.trials.size(); ++t) {
                    const ComparisonRun& run = r.trials[at + t];
                    const auto& h = run.result.history;
                    const double x = numeric(tv.trials[t].values[d]);
                    if (!run.error.empty() || run.result.diverged || h.empty() || !std::isfinite(x)) continue;
                    const double y = h.back().get(c.tuning->metric);
                    if (!std::isfinite(y)) continue;
                    s.x.push_back(log ? std::log10(x) : x);
                    s.mean.push_back(y), s.low.push_back(y), s.high.push_back(y);
                }
                series.push_back(std::move(s));
            }
            at += tv.trials.size();
        }
        const std::string file = "search_" + std::to_string(n + 1) + ".svg";
        const std::string svg = svg_line_chart("Trials: final " + metric + " against " + keys[n],
                                               log ? "log10(" + keys[n] + ")" : keys[n], "final " + metric, series);
        write_file_atomic(r.dir / file, svg);
        html += "<div class=\"chart\" id=\"search_" + std::to_string(n + 1) + "\">\n" + svg + "</div>\n";
    }
    return html;
}

}  // namespace

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<PlotSeries>& series) {
    // The legend's column is as wide as its longest name; the plot keeps its size.
    std::size_t longest = 0;
    for (const auto& s : series) longest = std::max(longest, s.name.size() + (s.x.empty() ? 11 : 0));
    const double right = std::max(150.0, 44 + 7.0 * double(longest));
    const double W = 490 + right, H = 400, left = 70, top = 40, bottom = 50;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (const auto& s : series)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
            y0 = std::min(y0, s.low[i]), y1 = std::max(y1, s.high[i]);
        }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    // Dots on the frame would hide half of themselves.
    bool points = false;
    for (const auto& s : series) points |= s.points;
    if (points) {
        const double margin = (x1 - x0) * 0.05;
        x0 -= margin, x1 += margin;
    }
    if (y1 <= y0) y1 = y0 + 1e-3 + std::abs(y0) * 1e-3;
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
    auto Y = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };

    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt(W) + "\" height=\"400\" viewBox=\"0 0 " +
                      fmt(W) + " 400\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"" + fmt(W) +
                      "\" height=\"400\" fill=\"white\"/>\n";
    svg += "<text x=\"" + fmt(left) + "\" y=\"24\" font-size=\"15\">" + html_escape(title) + "</text>\n";
    for (double t : ticks(y0, y1)) {
        svg += "<line x1=\"" + fmt(left) + "\" x2=\"" + fmt(W - right) + "\" y1=\"" + fmt(Y(t)) + "\" y2=\"" + fmt(Y(t)) +
               "\" stroke=\"#e5e5e5\"/>\n<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(Y(t) + 4) +
               "\" text-anchor=\"end\">" + fmt(t) + "</text>\n";
    }
    for (double t : ticks(x0, x1)) {
        svg += "<line x1=\"" + fmt(X(t)) + "\" x2=\"" + fmt(X(t)) + "\" y1=\"" + fmt(H - bottom) + "\" y2=\"" +
               fmt(H - bottom + 4) + "\" stroke=\"#333\"/>\n<text x=\"" + fmt(X(t)) + "\" y=\"" + fmt(H - bottom + 18) +
               "\" text-anchor=\"middle\">" + fmt(t) + "</text>\n";
    }
    svg += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(W - left - right) + "\" height=\"" +
           fmt(H - top - bottom) + "\" fill=\"none\" stroke=\"#333\"/>\n";
    svg += "<text x=\"" + fmt((left + W - right) / 2) + "\" y=\"" + fmt(H - 12) + "\" text-anchor=\"middle\">" +
           html_escape(x_label) + "</text>\n";
    svg += "<text transform=\"translate(16," + fmt((top + H - bottom) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
           html_escape(y_label) + "</text>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
        const auto& s = series[k];
        const std::string color = palette[k % std::size(palette)];
        if (s.points) {
            for (std::size_t i = 0; i < s.x.size(); ++i)
                svg += "<circle class=\"point\" data-series=\"" + html_escape(s.name) + "\" cx=\"" + fmt(X(s.x[i])) +
                       "\" cy=\"" + fmt(Y(s.mean[i])) + "\" r=\"4\" fill=\"" + color + "\" fill-opacity=\"0.8\"/>\n";
        } else if (!s.x.empty()) {
            std::string band = "M", line = "M";
            for (std::size_t i = 0; i < s.x.size(); ++i) band += (i ? " L" : "") + fmt(X(s.x[i])) + "," + fmt(Y(s.high[i]));
            for (std::size_t i = s.x.size(); i-- > 0;) band += " L" + fmt(X(s.x[i])) + "," + fmt(Y(s.low[i]));
            for (std::size_t i = 0; i < s.x.size(); ++i) line += (i ? " L" : "") + fmt(X(s.x[i])) + "," + fmt(Y(s.mean[i]));
            svg += "<path class=\"band\" d=\"" + band + " Z\" fill=\"" + color + "\" fill-opacity=\"0.18\" stroke=\"none\"/>\n";
            svg += "<path class=\"line\" data-series=\"" + html_escape(s.name) + "\" d=\"" + line + "\" fill=\"none\" stroke=\"" +
                   color + "\" stroke-width=\"2\"/>\n";
        }
        const double ly = top + 10 + 18 * double(k);
        svg += "<line x1=\"" + fmt(W - right + 12) + "\" x2=\"" + fmt(W - right + 32) + "\" y1=\"" + fmt(ly) + "\" y2=\"" +
               fmt(ly) + "\" stroke=\"" + color + "\" stroke-width=\"3\"/>\n<text x=\"" + fmt(W - right + 38) + "\" y=\"" +
               fmt(ly + 4) + "\">" + html_escape(s.name) + (s.x.empty() ? " (diverged)" : "") + "</text>\n";
    }
    return svg + "</svg>\n";
}

std::string svg_interval_chart(const std::string& title, const std::string& x_label, const std::vector<IntervalRow>& rows) {
    const double W = 640, left = 170, right = 30, top = 40, row_h = 26, bottom = 50;
    const double H = top + row_h * double(std::max<std::size_t>(rows.size(), 1)) + bottom;
    double x0 = INFINITY, x1 = -INFINITY;
    for (const auto& r : rows)
        for (double v : {r.mean, r.low, r.high})
            if (std::isfinite(v)) x0 = std::min(x0, v), x1 = std::max(x1, v);
    if (!std::isfinite(x0)) x0 = 0, x1 = 1;
    if (x1 <= x0) x1 = x0 + 1e-3 + std::abs(x0) * 1e-3;
    const double pad = (x1 - x0) * 0.05;
    x0 -= pad, x1 += pad;
    auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt(W) + "\" height=\"" + fmt(H) +
                      "\" viewBox=\"0 0 " + fmt(W) + " " + fmt(H) + "\" font-family=\"sans-serif\" font-size=\"12\">\n" +
                      "<rect width=\"" + fmt(W) + "\" height=\"" + fmt(H) + "\" fill=\"white\"/>\n";
    svg += "<text x=\"12\" y=\"24\" font-size=\"15\">" + html_escape(title) + "</text>\n";
    const double plot_bottom = H - bottom;
    for (double t : ticks(x0, x1))
        svg += "<line x1=\"" + fmt(X(t)) + "\" x2=\"" + fmt(X(t)) + "\" y1=\"" + fmt(top) + "\" y2=\"" + fmt(plot_bottom + 4) +
               "\" stroke=\"#e5e5e5\"/>\n<text x=\"" + fmt(X(t)) + "\" y=\"" + fmt(plot_bottom + 18) +
               "\" text-anchor=\"middle\">" + fmt(t) + "</text>\n";
    svg += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(W - left - right) + "\" height=\"" +
           fmt(plot_bottom - top) + "\" fill=\"none\" stroke=\"#333\"/>\n";
    svg += "<text x=\"" + fmt((left + W - right) / 2) + "\" y=\"" + fmt(H - 12) + "\" text-anchor=\"middle\">" +
           html_escape(x_label) + "</text>\n";
    for (std::size_t k = 0; k < rows.size(); ++k) {
        const auto& r = rows[k];
        const double y = top + row_h * (double(k) + 0.5);
        const std::string color = palette[k % std::size(palette)];
        svg += "<text x=\"" + fmt(left - 8) + "\" y=\"" + fmt(y + 4) + "\" text-anchor=\"end\">" + html_escape(r.name) +
               (r.mark.empty() ? "" : " (" + html_escape(r.mark) + ")") + "</text>\n";
        if (std::isfinite(r.low) && std::isfinite(r.high))
            svg += "<line class=\"interval\" data-series=\"" + html_escape(r.name) + "\" x1=\"" + fmt(X(r.low)) + "\" x2=\"" +
                   fmt(X(r.high)) + "\" y1=\"" + fmt(y) + "\" y2=\"" + fmt(y) + "\" stroke=\"" + color +
                   "\" stroke-width=\"3\"/>\n";
        if (std::isfinite(r.mean))
            svg += "<circle cx=\"" + fmt(X(r.mean)) + "\" cy=\"" + fmt(y) + "\" r=\"5\" fill=\"" + color + "\"/>\n";
    }
    return svg + "</svg>\n";
}

fs::path write_comparison_report(const Comparison& c, const ComparisonResult& r) {
    struct Chart {
        const char* file;
        std::string title, x, y;
        bool by_time;
        Metric metric;
    };
    const std::string acc = to_string(r.accuracy);
    const std::vector<Chart> charts = {
        {"loss_vs_epoch.svg", "train_loss", "epoch", "train_loss", false, Metric::train_loss},
        {"accuracy_vs_epoch.svg", acc, "epoch", acc, false, r.accuracy},
        {"loss_vs_time.svg", "train_loss against wall time", "seconds", "train_loss", true, Metric::train_loss},
        {"accuracy_vs_time.svg", acc + " against wall time", "seconds", acc, true, r.accuracy},
    };
    std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(c.name) +
                       "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
                       "table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
                       "text-align:right}td:first-child,th:first-child{text-align:left}.note{margin:2px 0;font-size:90%;color:#555}"
                       "svg{margin:8px 8px 0 0}</style></head><body>\n";
    html += "<h1>" + html_escape(c.name) + "</h1>\n<p>" + std::to_string(c.variants.size()) + " variants, " +
            std::to_string(c.seeds.size()) + " seed(s) each; lines are the mean over seeds, bands the range.</p>\n";
    html += html_table(c, r);
    {
        std::vector<IntervalRow> rows;
        for (const auto& s : r.stats)
            rows.push_back({s.variant,
                            s.variant == s.best ? "best" : s.p_vs_best < 0.05 ? "differs, p " + fmt(s.p_vs_best) : "",
                            s.final_accuracy, s.final_accuracy_ci.low, s.final_accuracy_ci.high});
        const std::string svg = svg_interval_chart("Final " + acc + ": mean and 95% bootstrap interval over seeds",
                                                   "final " + acc + " (fraction correct)", rows);
        write_file_atomic(r.dir / "final_accuracy_ci.svg", svg);
        html += "<div class=\"chart\" id=\"final_accuracy_ci\">\n" + svg + "</div>\n";
    }
    for (const auto& chart : charts) {
        std::vector<PlotSeries> series;
        for (const auto& variant : c.variants) {
            std::vector<const ComparisonRun*> runs;
            for (const auto& run : r.runs)
                if (run.variant == variant && !run.result.diverged) runs.push_back(&run);
            series.push_back(series_of(variant, runs, chart.by_time, chart.metric));
        }
        const std::string svg = svg_line_chart(chart.title, chart.x, chart.y, series);
        write_file_atomic(r.dir / chart.file, svg);
        html += "<div class=\"chart\" id=\"" + std::string(chart.file).substr(0, std::string(chart.file).size() - 4) +
                "\">\n" + svg + "</div>\n";
    }
    // Sensitivity (DeepOBS's learning-rate plot): the final accuracy of each swept
    // variant against the swept value, one chart per swept key.
    std::vector<std::string> keys;
    for (const auto& sweep : c.sweeps)
        if (std::find(keys.begin(), keys.end(), sweep.key) == keys.end()) keys.push_back(sweep.key);
    for (std::size_t k = 0; k < keys.size(); ++k) {
        std::vector<PlotSeries> series;
        bool log = false;
        for (const auto& sweep : c.sweeps) {
            if (sweep.key != keys[k]) continue;
            log |= sweep.log;
            PlotSeries s{sweep.variant, {}, {}, {}, {}};
            for (std::size_t i = 0; i < sweep.values.size(); ++i) {
                double sum = 0, lo = INFINITY, hi = -INFINITY;
                int n = 0;
                for (const auto& run : r.runs) {
                    if (run.variant != c.variants[sweep.variants[i]] || run.result.diverged || run.result.history.empty())
                        continue;
                    const double v = run.result.history.back().get(r.accuracy);
                    if (!std::isfinite(v)) continue;
                    sum += v, lo = std::min(lo, v), hi = std::max(hi, v), ++n;
                }
                if (n == 0) continue;   // every seed diverged at this value
                s.x.push_back(sweep.log ? std::log10(sweep.values[i]) : sweep.values[i]);
                s.mean.push_back(sum / n), s.low.push_back(lo), s.high.push_back(hi);
            }
            series.push_back(std::move(s));
        }
        const std::string file = "sensitivity_" + std::to_string(k + 1) + ".svg";
        const std::string svg = svg_line_chart("Final " + acc + " against " + keys[k],
                                               log ? "log10(" + keys[k] + ")" : keys[k], "final " + acc, series);
        write_file_atomic(r.dir / file, svg);
        html += "<div class=\"chart\" id=\"sensitivity_" + std::to_string(k + 1) + "\">\n" + svg + "</div>\n";
    }
    html += step_charts(c, r);
    html += tuning_section(c, r);
    html += "</body></html>\n";
    write_file_atomic(r.dir / "report.html", html);
    return r.dir / "report.html";
}

}  // namespace bp
