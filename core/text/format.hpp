// Numbers as Backplane's files and tables show them: one way each.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace bp {

// A CSV cell: 9 significant digits, empty for NaN or infinite (pandas reads a missing value).
std::string csv_number(double v);

// A JSON number, null for NaN or infinite (JSON has neither).
nlohmann::json json_number(double v);

// The shortest text that reads back as exactly `d`, and still as a float in YAML ("1.0", not "1").
std::string shortest_double(double d);

// "[0, 1000]": an inclusive range, as schemas declare it.
std::string range_text(double min, double max);

// "12.3k", "1.72M"
std::string human_count(double v);
// "42s", "1m12s", "2h05m"
std::string human_seconds(double s);

}  // namespace bp
