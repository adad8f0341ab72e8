#include "train/run_files.hpp"

#include <backplane/error.hpp>
#include <backplane/random.hpp>
#include <backplane/version.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <thread>
#include <sys/resource.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace bp {

void write_file_atomic(const fs::path& path, const std::string& content) {
    // Unique per process and thread: concurrent comparison runs write at once.
    const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid()) + "." +
                         std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        out.flush();
        if (!out) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw Error("cannot write " + path.string() + " (disk full or no permission?)");
        }
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw Error("cannot move " + tmp.string() + " to " + path.string() + ": " + ec.message());
}

fs::path new_run_dir(const fs::path& root, const std::string& name) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    const fs::path base = root / name / stamp;
    fs::path dir = base;
    std::error_code ec;
    for (int n = 2; fs::exists(dir); ++n) dir = base.string() + "-" + std::to_string(n);
    fs::create_directories(dir, ec);
    if (ec) throw Error("cannot create the run folder " + dir.string() + ": " + ec.message());
    return dir;
}

namespace {

// Empty for NaN, so pandas reads a missing value.
std::string cell(double v) {
    if (std::isnan(v)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

std::string metrics_csv(const std::vector<EpochMetrics>& history) {
    std::string out =
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,seconds,samples_per_second,"
        "lr\n";
    for (const auto& m : history) {
        out += std::to_string(m.epoch) + "," + cell(m.train.loss) + "," + cell(m.train.accuracy) + "," +
               cell(m.validation.loss) + "," + cell(m.validation.accuracy) + "," + cell(m.test.loss) + "," +
               cell(m.test.accuracy) + "," + cell(m.seconds) + "," +
               cell(m.samples_per_second()) + "," + cell(m.learning_rate) + "\n";
    }
    return out;
}

std::string summary_json(const RunSummary& s) {
    nlohmann::json j;
    j["name"] = s.name;
    j["seed"] = s.seed;
    j["threads"] = s.threads;
    j["parameters"] = s.parameters;
    j["status"] = s.status;
    j["epochs"] = s.history.size();
    double train_seconds = 0, samples = 0;
    for (const auto& m : s.history) train_seconds += m.train_seconds, samples += double(m.samples);
    const EpochMetrics last = s.history.empty() ? EpochMetrics{} : s.history.back();
    j["final"] = {{"train_loss", number(last.train.loss)},
                  {"train_accuracy", number(last.train.accuracy)},
                  {"val_loss", number(last.validation.loss)},
                  {"val_accuracy", number(last.validation.accuracy)},
                  {"test_loss", number(last.test.loss)},
                  {"test_accuracy", number(last.test.accuracy)}};
    j["samples_per_second"] = number(train_seconds > 0 ? samples / train_seconds : no_value);
    j["wall_seconds"] = s.wall_seconds;
    j["peak_rss_mib"] = s.peak_rss_mib;
    // A run's bits belong to its build: the version and what the layers' products ran on.
    j["backplane_version"] = BACKPLANE_VERSION;
    j["matrix_products"] = BACKPLANE_MATRIX_PRODUCTS;
    j["weights_fingerprint"] = s.weights_fingerprint;
    if (s.confusion.size() > 0) {
        nlohmann::json per_class = nlohmann::json::array(), rows = nlohmann::json::array();
        for (Eigen::Index c = 0; c < s.confusion.rows(); ++c) {
            const int total = s.confusion.row(c).sum();
            per_class.push_back(number(total ? double(s.confusion(c, c)) / total : no_value));
            std::vector<int> row;
            for (Eigen::Index p = 0; p < s.confusion.cols(); ++p) row.push_back(s.confusion(c, p));
            rows.push_back(row);
        }
        j["test"] = {{"per_class_accuracy", per_class}, {"confusion_matrix", rows}};
    }
    return j.dump(2) + "\n";
}

namespace {

nlohmann::json evaluation_json(const Evaluation& e) { return {{"loss", number(e.loss)}, {"accuracy", number(e.accuracy)}}; }

Evaluation evaluation_from(const nlohmann::json& j) {
    auto get = [&](const char* k) { return j.at(k).is_null() ? no_value : j.at(k).get<double>(); };
    return {get("loss"), get("accuracy")};
}

}  // namespace

std::string history_json(const std::vector<EpochMetrics>& history) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : history) {
        out.push_back({{"epoch", m.epoch}, {"train", evaluation_json(m.train)},
                       {"validation", evaluation_json(m.validation)}, {"test", evaluation_json(m.test)},
                       {"seconds", m.seconds}, {"train_seconds", m.train_seconds}, {"samples", m.samples},
                       {"diverged", m.diverged}, {"learning_rate", number(m.learning_rate)}});
    }
    return out.dump();
}

std::vector<EpochMetrics> parse_history_json(const std::string& json) {
    std::vector<EpochMetrics> out;
    for (const auto& j : nlohmann::json::parse(json)) {
        EpochMetrics m;
        m.epoch = j.at("epoch");
        m.train = evaluation_from(j.at("train"));
        m.validation = evaluation_from(j.at("validation"));
        m.test = evaluation_from(j.at("test"));
        m.seconds = j.at("seconds");
        m.train_seconds = j.at("train_seconds");
        m.samples = j.at("samples");
        m.diverged = j.at("diverged");
        const auto lr = j.value("learning_rate", nlohmann::json());   // absent before schedules existed
        m.learning_rate = lr.is_null() ? no_value : lr.get<double>();
        out.push_back(m);
    }
    return out;
}

std::string fingerprint(const std::vector<const Matrix*>& tensors) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const Matrix* t : tensors) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(t->data());
        for (std::size_t i = 0; i < std::size_t(t->size()) * sizeof(float); ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
    }
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
