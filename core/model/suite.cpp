#include "model/suite.hpp"

#include "text/suggest.hpp"

#include <utility>

namespace bp {

namespace fs = std::filesystem;

namespace {

// The suite's document: overrides applied, then in quick mode every `quick:` merged
// over the map that holds it; the `quick:` keys are gone either way.
YAML::Node suite_document(YamlReader& r, const std::string& text, const std::vector<std::string>& overrides,
                          bool quick) {
    YAML::Node root = r.parse(text);
    if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    for (const auto& o : overrides) r.apply_override(root, o);
    if (!root.IsMap() || !root["workloads"]) return root;
    auto take_quick = [&](YAML::Node map) {
        if (!map.IsMap() || !map["quick"]) return;
        const YAML::Node q = map["quick"];
        if (!q.IsMap()) r.fail(q, "quick must map keys to their quick values, e.g. { epochs: 3 }");
        if (q["name"]) r.fail(q["name"], "quick cannot rename the suite: its runs would go to another folder");
        map.remove("quick");
        if (quick) merge_over(r, map, q);
    };
    take_quick(root);
    if (root["workloads"].IsMap())
        for (auto kv : root["workloads"]) take_quick(kv.second);
    return root;
}

// Whether the suite has a quick: block anywhere.
bool has_quick(const YAML::Node& root) {
    if (!root.IsMap()) return false;
    if (root["quick"]) return true;
    if (root["workloads"] && root["workloads"].IsMap())
        for (const auto& kv : root["workloads"])
            if (kv.second.IsMap() && kv.second["quick"]) return true;
    return false;
}

// A workload's set: must be a list of KEY=VALUE texts.
void check_sets(const YamlReader& r, const YAML::Node& n, const std::string& what) {
    if (!n) return;
    if (!n.IsSequence()) r.fail(n, what + " must be a list of KEY=VALUE, e.g. [data.train_limit=10000]");
    for (const auto& s : n) r.scalar(s, what + " entry");
}

class SuiteReader {
public:
    SuiteReader(const std::string& text, const fs::path& file, const std::vector<std::string>& overrides, bool quick,
                Registry& registry)
        : text_(text), file_(file), overrides_(overrides), quick_(quick), registry_(registry) {}

    std::optional<Suite> read() const {
        YamlReader r(file_, registry_);
        const YAML::Node root = suite_document(r, text_, overrides_, quick_);
        if (!root.IsMap() || !root["workloads"]) return std::nullopt;
        r.check_keys(root, {"name", "seeds", "measure", "tuning", "variants", "workloads"}, "a suite");
        Suite s;
        s.name = root["name"] ? r.scalar(root["name"], "name") : file_.stem().string();
        if (const std::string problem = folder_name_problem(s.name); !problem.empty())
            r.fail(root["name"], "suite name '" + s.name + "' " + problem + ": it names the suite's folder");
        if (const YAML::Node m = root["measure"]) {
            const std::string measure = r.scalar(m, "measure");
            if (measure == "seconds") s.measure = ProfileMeasure::seconds;
            else if (measure != "epochs")
                r.fail(m, "measure must be epochs or seconds, not " + measure +
                              " (epochs: the same figures on every machine and across --resume)");
        }
        r.require(root, "variants", "a suite");
        const YAML::Node workloads = root["workloads"];
        if (!workloads.IsMap() || workloads.size() == 0)
            r.fail(workloads, "workloads must map each workload's name to { experiment: FILE, target: { metric, value } }");
        for (const auto& kv : workloads) {
            const std::string name = r.scalar(kv.first, "a workload's name");
            if (const std::string problem = folder_name_problem(name); !problem.empty())
                r.fail(kv.first, "workload name '" + name + "' " + problem + ": it names the workload's folder");
            if (name == "suite.json" || name == "suite.csv" || name == "report.html" || name == "profile.svg")
                r.fail(kv.first, "workload name '" + name + "' is the name of a file the suite writes; rename the workload");
            for (const auto& w : s.workloads)
                if (w.name == name) r.fail(kv.first, "two workloads are named '" + name + "'");
            s.workloads.push_back(workload(r, name, kv.second));
        }
        return s;
    }

private:
    Workload workload(const YamlReader& r, const std::string& name, const YAML::Node& n) const {
        if (!n.IsMap()) r.fail(n, "workload '" + name + "' must be { experiment: FILE, target: { metric, value }, epochs: N }");
        // quick: was taken out already; named so that the message lists it.
        r.check_keys(n, {"experiment", "target", "epochs", "trial_epochs", "set", "quick"}, "workload '" + name + "'");
        Workload w;
        w.name = name;
        w.file = file_.parent_path() / r.scalar(r.require(n, "experiment", "workload '" + name + "'"), "experiment");
        r.require(n, "target", "workload '" + name + "' (the performance profile times each variant to it)");
        if (n["epochs"]) r.integer(n["epochs"], "workload '" + name + "'.epochs", 1, 1e6);
        if (n["trial_epochs"]) r.integer(n["trial_epochs"], "workload '" + name + "'.trial_epochs", 1, 1e6);
        check_sets(r, n["set"], "workload '" + name + "'.set");
        std::string text;
        try {
            text = read_experiment_file(w.file);
        } catch (const Error& e) {
            r.fail(n["experiment"], e.what());
        }
        // Every document of the workload gets the suite's compare block, read afresh
        // from the suite (a document's nodes are its own), placed at the suite's lines.
        const DocumentHook hook = [&](YamlReader& er, YAML::Node& eroot) {
            YamlReader sr(file_, registry_);
            const YAML::Node sroot = suite_document(sr, text_, overrides_, quick_);
            const YAML::Node sw = sroot["workloads"][name];
            // The set: entries first, as --set would be, each placed at its entry in the suite.
            for (const auto& entry : sw["set"]) er.apply_override(eroot, entry.Scalar(), sr.where(entry) + ": set");
            if (eroot["compare"])
                er.fail(eroot["compare"], "workload '" + name + "' is a suite's: its variants come from the suite, "
                                          "so its experiment cannot have a compare: block of its own");
            YAML::Node compare(YAML::NodeType::Map);
            for (const char* key : {"seeds", "tuning", "variants"})
                if (sroot[key]) compare[key] = sroot[key];
            compare["target"] = sw["target"];
            if (sw["trial_epochs"]) {
                if (!compare["tuning"] || !compare["tuning"].IsMap())
                    sr.fail(sw["trial_epochs"], "trial_epochs is the budget of a tuning trial; the suite has no tuning:");
                compare["tuning"]["budget"] = sw["trial_epochs"];
            }
            er.place_from(compare, sr);
            eroot["compare"] = compare;
            if (sw["epochs"]) {
                er.place(sw["epochs"], sr.where(sw["epochs"]));
                eroot["train"]["epochs"] = sw["epochs"];
            }
        };
        try {
            auto c = parse_comparison(text, w.file, {}, registry_, hook);
            w.comparison = std::move(*c);
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (in suite workload '" + name + "')");
        }
        return w;
    }

    const std::string& text_;
    fs::path file_;
    const std::vector<std::string>& overrides_;
    bool quick_;
    Registry& registry_;
};

}  // namespace

std::optional<Suite> parse_suite(const std::string& text, const fs::path& file, const std::vector<std::string>& overrides,
                                 bool quick, Registry& registry) {
    std::optional<Suite> suite = SuiteReader(text, file, overrides, quick, registry).read();
    // The full mode reads the quick mode too, only to check it: a mistake in a quick:
    // block is found on the full suite's first run, not on the first --quick after it.
    if (suite && !quick && has_quick(YamlReader(file, registry).parse(text))) {
        try {
            SuiteReader(text, file, overrides, true, registry).read();
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (in --quick mode, read only to check it)");
        }
    }
    return suite;
}

std::optional<Suite> load_suite(const fs::path& file, const std::vector<std::string>& overrides, bool quick,
                                Registry& registry) {
    return parse_suite(read_experiment_file(file), fs::absolute(file), overrides, quick, registry);
}

}  // namespace bp
