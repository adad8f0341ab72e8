#include "train/run_files.hpp"

#include "text/format.hpp"
#include "text/suggest.hpp"

#include <backplane/error.hpp>
#include <backplane/random.hpp>
#include <backplane/version.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <sstream>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace bp {

namespace {

// write(2) until done; false with errno set on failure.
bool write_all(int fd, const std::string& content) {
    const char* p = content.data();
    std::size_t left = content.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        left -= std::size_t(n);
    }
    return true;
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::string& content) {
    // Unique per process and thread: concurrent comparison runs write at once.
    const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid()) + "." +
                         std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot write " + path.string() + ": " + std::strerror(errno));
    // No fsync: the promise is against a killed process and a full disk, which the page
    // cache and write's errors cover; syncing every epoch's files made short runs 3x slower
    // (spirals: 1.67 s against 0.51 s).
    const bool written = write_all(fd, content);
    const int saved = errno;
    ::close(fd);
    if (!written) {
        ::unlink(tmp.c_str());
        throw Error("cannot write " + path.string() + ": " + std::strerror(saved) + " (the previous version, if any, is kept)");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Error("cannot move " + tmp.string() + " to " + path.string() + ": " + std::strerror(err));
    }
}

void remove_temporaries(const fs::path& dir) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const auto at = name.rfind(".tmp.");
        if (at == std::string::npos || at == 0 || !e.is_regular_file(ec)) continue;
        const std::string tail = name.substr(at + 5);   // PID.THREAD
        const auto dot = tail.find('.');
        const auto digits = [](const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; };
        if (dot != std::string::npos && digits(tail.substr(0, dot)) && digits(tail.substr(dot + 1))) fs::remove(e.path(), ec);
    }
}

fs::path new_run_dir(const fs::path& root, const std::string& name) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    std::error_code ec;
    fs::create_directories(root / name, ec);
    if (ec) throw Error("cannot create the run folder " + (root / name).string() + ": " + ec.message());
    // create_directory is mkdir: it succeeds for one caller only, so a folder is
    // never shared by two runs started in the same second.
    const fs::path base = root / name / stamp;
    for (int n = 1;; ++n) {
        const fs::path dir = n == 1 ? base : fs::path(base.string() + "-" + std::to_string(n));
        if (fs::create_directory(dir, ec)) return dir;
        if (ec) throw Error("cannot create the run folder " + dir.string() + ": " + ec.message());
    }
}

namespace {

bool named(const fs::path& p, std::initializer_list<const char*> names) {
    const std::string name = p.filename().string();
    // A write killed before its rename leaves NAME.tmp.PID.THREAD beside NAME.
    for (const char* n : names)
        if (name == n || name.rfind(std::string(n) + ".tmp.", 0) == 0) return true;
    return false;
}

bool is_dir(const fs::path& p) {
    std::error_code ec;
    return fs::symlink_status(p, ec).type() == fs::file_type::directory;   // a link is not followed
}

bool is_file(const fs::path& p) {
    std::error_code ec;
    return fs::symlink_status(p, ec).type() == fs::file_type::regular;
}

// checkpoints/: the safetensors files a run writes.
bool checkpoint_folder(const fs::path& dir) {
    if (!is_dir(dir)) return false;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (!is_file(e.path()) || name.find(".safetensors") == std::string::npos) return false;
    }
    return true;
}

bool run_entry(const fs::path& p) {
    if (p.filename() == "checkpoints") return checkpoint_folder(p);
    return is_file(p) && named(p, {"config.yaml", "metrics.csv", "steps.csv", "summary.json", "timeline.csv"});
}

bool run_folder(const fs::path& dir) {
    if (!is_dir(dir)) return false;
    for (const auto& e : fs::directory_iterator(dir))
        if (!run_entry(e.path())) return false;
    return true;
}

// `prefix`, digits, ".svg": a numbered chart (sensitivity_2.svg).
bool numbered_chart(const std::string& name, const std::string& prefix) {
    if (name.rfind(prefix, 0) != 0 || name.size() <= prefix.size() + 4 || name.compare(name.size() - 4, 4, ".svg") != 0)
        return false;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - 4);
    return digits.find_first_not_of("0123456789") == std::string::npos;
}

// A comparison's own files (report.cpp's), or a variant's folder of seed-N and trial-N
// run folders.
bool comparison_entry(const fs::path& p) {
    const std::string name = p.filename().string();
    if (is_file(p) &&
        (named(p, {"comparison.csv", "comparison.json", "trials.csv", "report.html", "final_accuracy_ci.svg",
                   "loss_vs_epoch.svg", "accuracy_vs_epoch.svg", "loss_vs_time.svg", "accuracy_vs_time.svg",
                   "loss_vs_step.svg", "grad_norm_vs_step.svg", "update_ratio_vs_step.svg"}) ||
         numbered_chart(name, "sensitivity_") || numbered_chart(name, "search_")))
        return true;
    if (!is_dir(p)) return false;
    for (const auto& run : fs::directory_iterator(p)) {
        const std::string entry = run.path().filename().string();
        if ((entry.rfind("seed-", 0) != 0 && entry.rfind("trial-", 0) != 0) || !run_folder(run.path())) return false;
    }
    return true;
}

// A suite's own files, or a workload's comparison folder (which holds a variant's folder
// or its files: a folder of a report alone is not one).
bool suite_entry(const fs::path& p) {
    if (is_file(p)) return named(p, {"suite.json", "suite.csv", "report.html", "profile.svg"});
    if (!is_dir(p)) return false;
    bool comparison = false;
    for (const auto& e : fs::directory_iterator(p)) {
        if (!comparison_entry(e.path())) return false;
        comparison |= is_dir(e.path()) || e.path().filename() == "comparison.json";
    }
    return comparison;
}

}  // namespace

void claim_out_dir(const fs::path& dir, const std::string& what, bool overwrite) {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(dir, ec)) || (is_dir(dir) && fs::is_empty(dir, ec))) {
        fs::create_directories(dir, ec);
        if (ec) throw Error("cannot create the " + what + " folder " + dir.string() + ": " + ec.message());
        return;
    }
    if (fs::is_symlink(dir, ec))
        throw Error("--out " + dir.string() + " is a link; give the folder it points to (" +
                    fs::read_symlink(dir, ec).string() + ")");
    if (!is_dir(dir)) throw Error("--out " + dir.string() + " is not a folder");
    std::vector<fs::path> ours;
    std::vector<std::string> foreign;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (run_entry(e.path()) || comparison_entry(e.path()) || suite_entry(e.path())) ours.push_back(e.path());
        else foreign.push_back(e.path().filename().string());
    }
    if (!foreign.empty()) {
        std::sort(foreign.begin(), foreign.end());
        if (foreign.size() > 5) foreign.resize(5), foreign.push_back("...");
        throw Error("the folder " + dir.string() + " holds what Backplane did not write there (" + join(foreign) +
                    "); give --out a new or empty folder");
    }
    if (!overwrite)
        throw Error("the " + what + " folder " + dir.string() + " already holds results; continue that " + what +
                    " with --resume " + dir.string() + ", choose another --out, or pass --overwrite to replace them");
    for (const auto& p : ours) fs::remove_all(p);
}

std::string metrics_csv(const std::vector<EpochMetrics>& history) {
    std::string out = "epoch";
    for (Metric m : all_metrics) out += std::string(",") + to_string(m);
    out += ",seconds,samples_per_second,lr\n";
    for (const auto& e : history) {
        out += std::to_string(e.epoch);
        for (Metric m : all_metrics) out += "," + csv_number(e.get(m));
        out += "," + csv_number(e.seconds) + "," + csv_number(e.samples_per_second()) + "," + csv_number(e.learning_rate) +
               "\n";
    }
    return out;
}

double samples_per_second(const std::vector<EpochMetrics>& history) {
    double samples = 0, seconds = 0;
    for (const auto& m : history) samples += double(m.samples), seconds += m.train_seconds;
    return seconds > 0 ? samples / seconds : std::numeric_limits<double>::quiet_NaN();
}

std::string summary_json(const RunSummary& s) {
    nlohmann::json j;
    j["name"] = s.name;
    j["seed"] = s.seed;
    j["threads"] = s.threads;
    j["processes"] = s.processes;
    j["bytes_sent_per_step"] = s.bytes_per_step;
    j["parameters"] = s.parameters;
    j["status"] = s.status;
    j["epochs"] = s.history.size();
    const EpochMetrics last = s.history.empty() ? EpochMetrics{} : s.history.back();
    for (Metric m : all_metrics) j["final"][to_string(m)] = json_number(last.get(m));
    j["samples_per_second"] = json_number(samples_per_second(s.history));
    j["wall_seconds"] = s.wall_seconds;
    j["peak_rss_mib"] = s.peak_rss_mib;
    // A run's bits belong to its build: the version and what the layers' products ran on.
    j["backplane_version"] = BACKPLANE_VERSION;
    j["matrix_products"] = BACKPLANE_MATRIX_PRODUCTS;
    const char* tunables = std::getenv("GLIBC_TUNABLES");   // malloc's settings (core/cli/main.cpp)
    j["glibc_tunables"] = tunables ? tunables : "";
    j["weights_fingerprint"] = s.weights_fingerprint;
    if (s.confusion.size() > 0) {
        nlohmann::json per_class = nlohmann::json::array(), rows = nlohmann::json::array();
        for (Eigen::Index c = 0; c < s.confusion.rows(); ++c) {
            const int total = s.confusion.row(c).sum();
            per_class.push_back(json_number(total ? double(s.confusion(c, c)) / total : std::nan("")));
            std::vector<int> row;
            for (Eigen::Index p = 0; p < s.confusion.cols(); ++p) row.push_back(s.confusion(c, p));
            rows.push_back(row);
        }
        j["test"] = {{"per_class_accuracy", per_class}, {"confusion_matrix", rows}};
    }
    j["history"] = history_json(s.history);
    return j.dump(2) + "\n";
}

RunSummary read_summary(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Error("cannot open " + file.string());
    std::stringstream text;
    text << in.rdbuf();
    try {
        const auto j = nlohmann::json::parse(text.str());
        RunSummary s;
        s.name = j.at("name");
        s.seed = j.at("seed");
        s.threads = j.at("threads");
        s.processes = j.value("processes", 1);   // runs of 0.5 and before: one
        s.bytes_per_step = j.value("bytes_sent_per_step", int64_t(0));
        s.parameters = j.at("parameters");
        s.status = j.at("status");
        s.wall_seconds = j.at("wall_seconds");
        s.peak_rss_mib = j.at("peak_rss_mib");
        s.weights_fingerprint = j.at("weights_fingerprint");
        s.history = parse_history_json(j.at("history"));
        return s;
    } catch (const nlohmann::json::exception& e) {
        throw Error(file.string() + " is not a summary this Backplane wrote (" + e.what() + ")");
    }
}

namespace {

// Every double as it is: JSON has no NaN or infinity, so those are the strings
// "nan", "inf" and "-inf" (a diverged epoch's loss is +inf, not NaN).
nlohmann::json exact_number(double v) {
    if (std::isfinite(v)) return v;
    return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

double number_or_nan(const nlohmann::json& j) {
    if (j.is_string()) return std::strtod(j.get<std::string>().c_str(), nullptr);
    return j.is_null() ? std::nan("") : j.get<double>();
}

double& slot(EpochMetrics& m, Metric metric) {
    switch (metric) {
        case Metric::train_loss: return m.train.loss;
        case Metric::train_accuracy: return m.train.accuracy;
        case Metric::val_loss: return m.validation.loss;
        case Metric::val_accuracy: return m.validation.accuracy;
        case Metric::test_loss: return m.test.loss;
        case Metric::test_accuracy: return m.test.accuracy;
    }
    throw Error("unknown metric");
}

}  // namespace

// Each epoch under the names metrics.csv uses, plus what resuming needs.
nlohmann::json history_json(const std::vector<EpochMetrics>& history) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : history) {
        nlohmann::json epoch = {{"epoch", m.epoch}};
        for (const Metric metric : all_metrics) epoch[to_string(metric)] = exact_number(m.get(metric));
        epoch["lr"] = exact_number(m.learning_rate);
        epoch["seconds"] = m.seconds;
        epoch["train_seconds"] = m.train_seconds;
        epoch["samples"] = m.samples;
        epoch["diverged"] = m.diverged;
        out.push_back(std::move(epoch));
    }
    return out;
}

std::vector<EpochMetrics> parse_history_json(const nlohmann::json& json) {
    std::vector<EpochMetrics> out;
    for (const auto& j : json) {
        EpochMetrics m;
        m.epoch = j.at("epoch");
        for (const Metric metric : all_metrics) slot(m, metric) = number_or_nan(j.at(to_string(metric)));
        m.learning_rate = number_or_nan(j.at("lr"));
        m.seconds = j.at("seconds");
        m.train_seconds = j.at("train_seconds");
        m.samples = j.at("samples");
        m.diverged = j.at("diverged");
        out.push_back(m);
    }
    return out;
}

std::string fingerprint(const std::vector<const Matrix*>& tensors) {
    uint64_t h = fnv1a({});
    for (const Matrix* t : tensors)
        h = fnv1a({reinterpret_cast<const char*>(t->data()), std::size_t(t->size()) * sizeof(float)}, h);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;   // Linux reports KiB
}

}  // namespace bp
