#include "model/experiment.hpp"

#include "text/format.hpp"

#include <fstream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace bp {

namespace {

const std::vector<std::string> top_keys = {"name", "seed", "data", "blocks", "model", "init_from", "loss", "optimizer",
                                           "train", "plugins", "compare"};

// Plugins first: the sections after may name their components.
void read_plugins(YamlReader& r, const YAML::Node& plugins, Experiment& e) {
    if (!plugins) return;
    if (!plugins.IsSequence()) r.fail(plugins, "plugins must be a list of paths");
    for (const auto& p : plugins) {
        fs::path path = r.scalar(p, "plugins entry");
        if (path.is_relative()) path = r.file().parent_path() / path;
        path = fs::absolute(path).lexically_normal();
        std::error_code ec;
        if (!fs::exists(path, ec)) r.fail(p, "plugin path " + path.string() + (ec ? ": " + ec.message() : " does not exist"));
        try {
            r.registry().load_path(path);
        } catch (const Error& err) {
            r.fail(p, err.what());
        } catch (const fs::filesystem_error& err) {
            r.fail(p, "plugin path " + path.string() + ": " + err.code().message());
        }
        e.plugins.push_back(path);
    }
}

void read_data(const YamlReader& r, const YAML::Node& n, Experiment& e) {
    if (!n.IsMap()) r.fail(n, "data must be a mapping with 'source' and the dataset's parameters");
    const YAML::Node source = r.require(n, "source", "data");
    e.data.kind = Kind::dataset;
    e.data.where = r.where(n);
    e.data.name = r.scalar(source, "data.source");
    const Schema& schema = r.lookup(source, Kind::dataset, e.data.name).schema;
    e.data.params = r.params(n, schema, "data (" + e.data.name + ")", {"source", "validation_split", "augment"});
    if (const auto v = n["validation_split"]) {
        const ParamSpec spec{"validation_split", ParamType::number, 0.0, 0.0, 0.9, {}, ""};
        e.validation_split = std::get<double>(r.value(spec, v, "data.validation_split"));
    }
    if (const auto a = n["augment"]) {
        if (!a.IsMap()) r.fail(a, "data.augment takes a mapping, e.g. { flip: true, crop: 2 }");
        e.augment = augment_config(r.params(a, augment_schema(), "data.augment"));
        e.augment_where = r.where(a);
    }
}

void read_init_from(const YamlReader& r, const YAML::Node& n, Experiment& e) {
    if (!n) return;
    if (!n.IsMap()) r.fail(n, "init_from takes { checkpoint: PATH, nodes: [names] }");
    r.check_keys(n, {"checkpoint", "nodes"}, "init_from");
    InitFrom init;
    init.checkpoint = r.scalar(r.require(n, "checkpoint", "init_from"), "init_from.checkpoint");
    if (init.checkpoint.is_relative()) init.checkpoint = r.file().parent_path() / init.checkpoint;
    init.checkpoint = init.checkpoint.lexically_normal();
    if (const YAML::Node nodes = n["nodes"]) {
        if (!nodes.IsSequence() || nodes.size() == 0) r.fail(nodes, "init_from.nodes must be a non-empty list of entry names");
        for (const auto& node : nodes) init.nodes.push_back(r.scalar(node, "init_from.nodes entry"));
    }
    init.where = r.where(n);
    e.init_from = std::move(init);
}

// The optimizer, and its schedule (with warmup) when it has one.
void read_optimizer(const YamlReader& r, const YAML::Node& n, Experiment& e) {
    e.optimizer = r.named_component(n, Kind::optimizer, "optimizer", {"schedule"});
    if (n.IsMap() && n["schedule"]) {
        const YAML::Node schedule = n["schedule"];
        e.schedule = r.named_component(schedule, Kind::schedule, "optimizer.schedule", {"warmup", "per_step"});
        if (schedule.IsMap() && schedule["per_step"]) {
            const std::string v = r.scalar(schedule["per_step"], "optimizer.schedule.per_step");
            if (v != "true" && v != "false") r.fail(schedule["per_step"], "optimizer.schedule.per_step must be true or false");
            e.per_step = v == "true";
        }
        if (schedule.IsMap() && schedule["warmup"])
            e.warmup = r.integer(schedule["warmup"], "optimizer.schedule.warmup", 0, e.per_step ? 1e12 : 1e6);
    } else {
        e.schedule = {Kind::schedule, "constant", Params::defaults(r.lookup(n, Kind::schedule, "constant").schema),
                      r.where(n)};
    }
}

void read_train(const YamlReader& r, YAML::Node n, TrainConfig& t) {
    if (n && n.IsMap() && n["threads"] && n["threads"].IsScalar() && n["threads"].Scalar() == "auto")
        n["threads"] = 0;  // the one non-integer spelling the schema cannot express
    t = train_config(r.params(n, train_schema(), "train"));
}

void emit_params(YAML::Emitter& out, const Params& p) {
    for (const auto& [key, v] : p.values()) {
        out << YAML::Key << key << YAML::Value;
        if (auto d = std::get_if<double>(&v)) out << shortest_double(*d);
        else if (auto b = std::get_if<bool>(&v)) out << *b;
        else if (auto i = std::get_if<int64_t>(&v)) out << *i;
        else out << YAML::DoubleQuoted << std::get<std::string>(v);
    }
}

// "optimizer.lr" -> "0.1" for every scalar of a document (lists indexed).
void flatten(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
    if (n.IsMap()) {
        for (const auto& kv : n) flatten(kv.second, path.empty() ? kv.first.Scalar() : path + "." + kv.first.Scalar(), out);
    } else if (n.IsSequence()) {
        for (std::size_t i = 0; i < n.size(); ++i) flatten(n[i], path + "." + std::to_string(i), out);
    } else {
        out[path] = n.IsScalar() ? n.Scalar() : "";
    }
}

}  // namespace

std::string folder_name_problem(const std::string& name) {
    if (name.empty()) return "is empty";
    if (name == "." || name == "..") return "is '" + name + "'";
    if (name.find_first_of("/\\") != std::string::npos) return "holds a slash";
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f) return "holds a control character (a newline, a tab, ...)";
    if (name.size() > 200) return "is longer than 200 characters";
    return {};
}

Experiment read_experiment(YamlReader& r, const YAML::Node& root) {
    if (!root.IsMap()) r.fail(root, "an experiment is a mapping of keys (name, model, loss, ...)");
    r.check_keys(root, top_keys, "the experiment");
    Experiment e;
    e.file = r.file();
    e.name = root["name"] ? r.scalar(root["name"], "name") : r.file().stem().string();
    if (const std::string problem = folder_name_problem(e.name); !problem.empty())
        r.fail(root["name"] ? root["name"] : root, "name '" + e.name + "' " + problem + ": it names the runs' folder");
    e.seed = root["seed"] ? uint64_t(r.integer(root["seed"], "seed", 0, double(INT64_MAX))) : 0;
    read_plugins(r, root["plugins"], e);
    read_data(r, r.require(root, "data", "the experiment"), e);
    e.model = read_model(r, r.require(root, "model", "the experiment"), root["blocks"]);
    read_init_from(r, root["init_from"], e);
    e.loss = r.named_component(r.require(root, "loss", "the experiment"), Kind::loss, "loss");
    const YAML::Node optimizer = r.require(root, "optimizer", "the experiment");
    read_optimizer(r, optimizer, e);
    read_train(r, root["train"], e.train);
    const YAML::Node train = root["train"];
    e.best_metric_where = r.where(train && train.IsMap() && train["best_metric"] ? train["best_metric"] : root);
    if (!e.per_step && e.warmup >= e.train.epochs)
        r.fail(optimizer["schedule"]["warmup"], "optimizer.schedule.warmup = " + std::to_string(e.warmup) +
                                                    " leaves no epoch of the " + std::to_string(e.train.epochs) +
                                                    " for the schedule; make it smaller than train.epochs");
    return e;
}

Experiment parse_experiment(const std::string& text, const fs::path& file, const std::vector<std::string>& overrides,
                            Registry& registry) {
    YamlReader reader(file, registry);
    YAML::Node root = reader.parse(text);
    if (!root.IsDefined() || root.IsNull()) {
        if (overrides.empty()) throw Error(file.string() + ": the experiment file is empty");
        root = YAML::Node(YAML::NodeType::Map);
    }
    for (const auto& o : overrides) reader.apply_override(root, o);
    return read_experiment(reader, root);
}

std::string read_experiment_file(const fs::path& file) {
    std::error_code ec;
    if (fs::is_directory(file, ec)) throw Error(file.string() + ": is a folder; give the experiment's YAML file");
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot open the experiment file" + (ec ? " (" + ec.message() + ")" : ""));
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides, Registry& registry) {
    return parse_experiment(read_experiment_file(file), fs::absolute(file), overrides, registry);
}

std::string to_yaml(const Experiment& e) {
    YAML::Emitter out;
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << e.name;
    out << YAML::Key << "seed" << YAML::Value << e.seed;
    out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "source" << YAML::Value << e.data.name;
    out << YAML::Key << "validation_split" << YAML::Value << shortest_double(e.validation_split);
    if (e.augment.any()) {
        out << YAML::Key << "augment" << YAML::Value << YAML::Flow << YAML::BeginMap;
        emit_params(out, augment_params(e.augment));
        out << YAML::EndMap;
    }
    emit_params(out, e.data.params);
    out << YAML::EndMap;
    out << YAML::Key << "model" << YAML::Value << YAML::BeginSeq;
    // Blocks expanded: the model as it runs, each entry's inputs by label when they are
    // not the entry above.
    for (std::size_t i = 0; i < e.model.size(); ++i) {
        const ModelNode& node = e.model[i];
        out << YAML::BeginMap << YAML::Key << node.component.name << YAML::Value << YAML::Flow << YAML::BeginMap;
        emit_params(out, node.component.params);
        out << YAML::EndMap;
        if (!node.name.empty()) out << YAML::Key << "name" << YAML::Value << node.name;
        if (!node.trainable) out << YAML::Key << "trainable" << YAML::Value << false;
        if (node.lr_scale != 1) out << YAML::Key << "lr_scale" << YAML::Value << shortest_double(node.lr_scale);
        if (!(node.inputs.size() == 1 && node.inputs[0].source == std::ptrdiff_t(i) - 1)) {
            out << YAML::Key << "inputs" << YAML::Value << YAML::Flow << YAML::BeginSeq;
            for (const auto& input : node.inputs)
                out << (input.source < 0 ? std::string(network_input)
                                         : e.model[std::size_t(input.source)].label(std::size_t(input.source)));
            out << YAML::EndSeq;
        }
        out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    if (e.init_from) {
        out << YAML::Key << "init_from" << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "checkpoint" << YAML::Value << e.init_from->checkpoint.string();
        if (!e.init_from->nodes.empty()) out << YAML::Key << "nodes" << YAML::Value << YAML::Flow << e.init_from->nodes;
        out << YAML::EndMap;
    }
    for (const auto* c : {&e.loss, &e.optimizer}) {
        out << YAML::Key << to_string(c->kind) << YAML::Value << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value << c->name;
        emit_params(out, c->params);
        if (c == &e.optimizer) {
            out << YAML::Key << "schedule" << YAML::Value << YAML::Flow << YAML::BeginMap;
            out << YAML::Key << "name" << YAML::Value << e.schedule.name;
            if (e.warmup > 0) out << YAML::Key << "warmup" << YAML::Value << e.warmup;
            if (e.per_step) out << YAML::Key << "per_step" << YAML::Value << true;
            emit_params(out, e.schedule.params);
            out << YAML::EndMap;
        }
        out << YAML::EndMap;
    }
    out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
    const Params train = train_params(e.train);
    for (const auto& setting : train_settings()) {
        out << YAML::Key << setting.key << YAML::Value;
        std::visit([&](const auto& v) { out << v; }, train.values().at(setting.key));
    }
    out << YAML::EndMap;
    if (!e.plugins.empty()) {
        out << YAML::Key << "plugins" << YAML::Value << YAML::BeginSeq;
        for (const auto& p : e.plugins) out << p.string();
        out << YAML::EndSeq;
    }
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

std::vector<std::string> experiment_changes(const std::string& before_yaml, const std::string& after_yaml) {
    // The earlier text comes from a checkpoint, a file like any other: read with the checks.
    std::map<std::string, std::string> before, after;
    flatten(parse_yaml(before_yaml, "the saved config"), "", before);
    flatten(parse_yaml(after_yaml, "the config"), "", after);
    std::vector<std::string> out;
    for (const auto& [key, value] : before) {
        const auto it = after.find(key);
        if (it == after.end()) out.push_back(key + ": " + value + " -> (gone)");
        else if (it->second != value) out.push_back(key + ": " + value + " -> " + it->second);
    }
    for (const auto& [key, value] : after)
        if (!before.count(key)) out.push_back(key + ": (none) -> " + value);
    return out;
}

}  // namespace bp
