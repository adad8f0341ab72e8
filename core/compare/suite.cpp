#include "compare/suite.hpp"

#include "compare/report.hpp"
#include "text/format.hpp"
#include "train/run_files.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace bp {

namespace fs = std::filesystem;

namespace {

fs::path suite_dir(const Suite& s, const RunOptions& options) {
    if (!options.resume.empty()) {
        if (!fs::is_directory(options.resume)) throw Error("--resume " + options.resume.string() + ": no such suite folder");
        // A comparison's folder holds variants' folders of seed-N or trial-N runs.
        bool comparison = fs::exists(options.resume / "comparison.json") || fs::exists(options.resume / "summary.json");
        for (const auto& e : fs::directory_iterator(options.resume))
            if (e.is_directory())
                for (const auto& run : fs::directory_iterator(e.path())) {
                    const std::string name = run.path().filename().string();
                    comparison |= name.rfind("seed-", 0) == 0 || name.rfind("trial-", 0) == 0;
                }
        if (comparison)
            throw Error("--resume " + options.resume.string() + " is a run's or a comparison's folder, not a suite's; "
                        "resume it with the file that made it");
        remove_temporaries(options.resume);
        return options.resume;
    }
    if (options.out.empty()) return new_run_dir(options.runs_root, s.name);
    claim_out_dir(options.out, "suite", options.overwrite);
    return options.out;
}

// Each variant's median time to the workload's target over its seeds.
std::vector<double> median_times(const Comparison& c, const ComparisonResult& r, ProfileMeasure measure,
                                 const std::vector<std::string>& variants) {
    std::vector<double> out;
    for (const auto& variant : variants) {
        std::vector<double> times;
        for (const auto& run : r.runs) {
            if (run.variant != variant) continue;
            const bool ok = run.error.empty() && !run.result.diverged && !run.result.history.empty();
            const auto [epoch, seconds] = ok ? time_to_target(run.result.history, *c.target) : std::pair<int64_t, double>{0, 0};
            times.push_back(epoch == 0 ? INFINITY : measure == ProfileMeasure::epochs ? double(epoch) : seconds);
        }
        out.push_back(times.empty() ? INFINITY : median_time(times));
    }
    return out;
}

std::string time_cell(double t, double ratio, ProfileMeasure measure) {
    if (!std::isfinite(t)) return "never";
    char buf[64];
    std::snprintf(buf, sizeof buf, measure == ProfileMeasure::epochs ? "%.1f ep (x%.2f)" : "%.2fs (x%.2f)", t, ratio);
    return buf;
}

const char* measure_name(ProfileMeasure m) { return m == ProfileMeasure::epochs ? "epochs" : "seconds"; }

// The profile's step functions rho_v(tau), tau from 1 to tau_max.
std::vector<PlotSeries> profile_series(const SuiteResult& r) {
    std::vector<PlotSeries> series;
    for (std::size_t v = 0; v < r.variants.size(); ++v) {
        PlotSeries s{r.variants[v] + " (area " + shortest_double(std::round(r.profile.area[v] * 1000) / 1000) + ")", {}, {}, {}, {}};
        std::vector<double> steps;
        for (const auto& row : r.profile.ratio)
            if (row[v] <= r.profile.tau_max) steps.push_back(row[v]);
        std::sort(steps.begin(), steps.end());
        auto add = [&](double x, double y) { s.x.push_back(x), s.mean.push_back(y), s.low.push_back(y), s.high.push_back(y); };
        add(1, profile_at(r.profile, v, 1));
        for (double tau : steps) {
            if (tau <= 1) continue;   // counted at tau = 1
            add(tau, s.mean.back());
            add(tau, profile_at(r.profile, v, tau));
        }
        add(r.profile.tau_max, profile_at(r.profile, v, r.profile.tau_max));
        series.push_back(std::move(s));
    }
    return series;
}

std::string suite_json(const Suite& s, const SuiteResult& r) {
    nlohmann::json j = {{"name", s.name}, {"measure", measure_name(s.measure)}, {"tau_max", r.profile.tau_max}};
    for (std::size_t w = 0; w < s.workloads.size(); ++w) {
        const Comparison& c = s.workloads[w].comparison;
        nlohmann::json times, ratios;
        for (std::size_t v = 0; v < r.variants.size(); ++v) {
            times[r.variants[v]] = json_number(r.times[w][v]);
            ratios[r.variants[v]] = json_number(r.profile.ratio[w][v]);
        }
        j["workloads"].push_back({{"workload", s.workloads[w].name},
                                  {"dir", s.workloads[w].name},
                                  {"target", {{"metric", to_string(c.target->metric)}, {"value", c.target->value}}},
                                  {"time_to_target", times},
                                  {"ratio", ratios}});
    }
    for (std::size_t rank = 0; rank < r.ranking.size(); ++rank) {
        const std::size_t v = r.ranking[rank];
        int reached = 0;
        for (const auto& row : r.times) reached += std::isfinite(row[v]);
        j["variants"].push_back({{"variant", r.variants[v]},
                                 {"rank", rank + 1},
                                 {"profile_area", r.profile.area[v]},
                                 {"workloads_reached", reached}});
    }
    return j.dump(2) + "\n";
}

std::string suite_csv(const Suite& s, const SuiteResult& r) {
    std::string out = "workload,variant,time_to_target_" + std::string(measure_name(s.measure)) + ",ratio_to_fastest\n";
    for (std::size_t w = 0; w < s.workloads.size(); ++w)
        for (std::size_t v = 0; v < r.variants.size(); ++v)
            out += s.workloads[w].name + "," + r.variants[v] + "," +
                   (std::isfinite(r.times[w][v]) ? csv_number(r.times[w][v]) : "") + "," +
                   (std::isfinite(r.profile.ratio[w][v]) ? csv_number(r.profile.ratio[w][v]) : "") + "\n";
    return out;
}

// The suite's report: the ranking, the profile, and a link to each workload's
// report. Nothing in it depends on the clock when the profile measures epochs.
void write_suite_report(const Suite& s, const SuiteResult& r) {
    const std::string svg = svg_line_chart("Performance profile: share of workloads within tau x the fastest",
                                           "tau (time to target / fastest variant's)", "share of workloads",
                                           profile_series(r));
    write_file_atomic(r.dir / "profile.svg", svg);
    std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(s.name) +
                       "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:"
                       "collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
                       "td:nth-child(2),th:nth-child(2){text-align:left}</style></head><body>\n<h1>" +
                       html_escape(s.name) + "</h1>\n<p>" + std::to_string(s.workloads.size()) + " workloads, " +
                       std::to_string(r.variants.size()) + " variants. Time to target is the median over seeds, in " +
                       measure_name(s.measure) + "; the profile's area is 1 for a variant fastest on every workload.</p>\n";
    html += "<table>\n";
    const auto rows = suite_rows(s, r);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        html += "<tr>";
        for (const auto& cell : rows[i]) html += (i == 0 ? "<th>" : "<td>") + html_escape(cell) + (i == 0 ? "</th>" : "</td>");
        html += "</tr>\n";
    }
    html += "</table>\n<div class=\"chart\" id=\"profile\">\n" + svg + "</div>\n<h2>Workloads</h2>\n<ul>\n";
    for (const auto& w : s.workloads)
        html += "<li><a href=\"" + html_escape(w.name) + "/report.html\">" + html_escape(w.name) + "</a>: " +
                html_escape(w.file.filename().string()) + ", target " + to_string(w.comparison.target->metric) + " " +
                shortest_double(w.comparison.target->value) + "</li>\n";
    html += "</ul>\n</body></html>\n";
    write_file_atomic(r.dir / "report.html", html);
}

}  // namespace

std::vector<std::vector<std::string>> suite_rows(const Suite& s, const SuiteResult& r) {
    std::vector<std::vector<std::string>> rows = {{"rank", "variant", "profile area", "reached"}};
    for (const auto& w : s.workloads) rows[0].push_back(w.name);
    for (std::size_t rank = 0; rank < r.ranking.size(); ++rank) {
        const std::size_t v = r.ranking[rank];
        int reached = 0;
        for (const auto& row : r.times) reached += std::isfinite(row[v]);
        char area[32];
        std::snprintf(area, sizeof area, "%.3f", r.profile.area[v]);
        std::vector<std::string> row = {std::to_string(rank + 1), r.variants[v], area,
                                        std::to_string(reached) + "/" + std::to_string(s.workloads.size())};
        for (std::size_t w = 0; w < s.workloads.size(); ++w)
            row.push_back(time_cell(r.times[w][v], r.profile.ratio[w][v], s.measure));
        rows.push_back(std::move(row));
    }
    return rows;
}

std::string suite_table(const Suite& s, const SuiteResult& r) {
    const auto rows = suite_rows(s, r);
    std::vector<std::size_t> width(rows[0].size(), 0);
    for (const auto& row : rows)
        for (std::size_t k = 0; k < row.size(); ++k) width[k] = std::max(width[k], row[k].size());
    std::string out;
    for (const auto& row : rows) {
        for (std::size_t k = 0; k < row.size(); ++k) {
            const std::string pad(width[k] - row[k].size(), ' ');
            out += (k == 1 ? row[k] + pad : pad + row[k]) + (k + 1 < row.size() ? "  " : "");
        }
        out += "\n";
    }
    return out;
}

SuiteResult run_suite(const Suite& s, const Registry& registry, const RunOptions& options, int jobs, std::ostream& log) {
    SuiteResult r;
    Cluster* cluster = options.cluster;
    const bool leads = !cluster || cluster->rank() == 0;
    auto prepare = [&] {
        if (leads) r.dir = suite_dir(s, options);
    };
    if (cluster) {
        cluster->agree(prepare);
        r.dir = cluster->broadcast(r.dir.string());
    } else {
        prepare();
    }
    r.variants = s.workloads[0].comparison.variants;
    const bool quiet = options.quiet || !leads;
    for (std::size_t w = 0; w < s.workloads.size(); ++w) {
        const Workload& workload = s.workloads[w];
        if (!quiet)
            log << "== workload " << w + 1 << "/" << s.workloads.size() << ": " << workload.name << " ("
                << workload.file.filename().string() << ")\n";
        RunOptions one = options;
        one.out = r.dir / workload.name;
        one.resume.clear();
        one.overwrite = false;
        // A workload the cut suite had begun resumes; one it had not starts.
        if (!options.resume.empty() && fs::is_directory(one.out)) std::swap(one.out, one.resume);
        r.workloads.push_back(run_comparison(workload.comparison, registry, one, jobs, log));
        if (!quiet) log << "\n";
    }
    if (!leads) return r;
    for (std::size_t w = 0; w < s.workloads.size(); ++w)
        r.times.push_back(median_times(s.workloads[w].comparison, r.workloads[w], s.measure, r.variants));
    r.profile = performance_profile(r.times);
    for (std::size_t v = 0; v < r.variants.size(); ++v) r.ranking.push_back(v);
    std::stable_sort(r.ranking.begin(), r.ranking.end(),
                     [&](std::size_t a, std::size_t b) { return r.profile.area[a] > r.profile.area[b]; });
    write_file_atomic(r.dir / "suite.csv", suite_csv(s, r));
    write_file_atomic(r.dir / "suite.json", suite_json(s, r));
    write_suite_report(s, r);
    if (!quiet)
        log << "suite " << s.name << ": time to target (median over seeds, " << measure_name(s.measure)
            << ") and its ratio to the fastest variant; ranked by the area under the performance profile (tau 1 to "
            << r.profile.tau_max << ")\n"
            << suite_table(s, r) << "\nresults in " << r.dir.string() << "\nreport: " << (r.dir / "report.html").string()
            << "\n";
    return r;
}

}  // namespace bp
