#include "compare/profile.hpp"

#include <algorithm>
#include <cmath>

namespace bp {

Profile performance_profile(const std::vector<std::vector<double>>& times, double tau_max) {
    Profile p;
    p.tau_max = tau_max;
    const std::size_t variants = times.empty() ? 0 : times[0].size();
    p.area.assign(variants, 0.0);
    for (const auto& row : times) {
        double fastest = INFINITY;
        for (double t : row) fastest = std::min(fastest, t);
        std::vector<double> ratios;
        for (double t : row) ratios.push_back(std::isfinite(fastest) && std::isfinite(t) ? t / fastest : INFINITY);
        // rho_v steps up by 1/W at tau = ratio: its integral from 1 to tau_max is
        // (tau_max - ratio) / W for each workload within tau_max.
        for (std::size_t v = 0; v < variants; ++v)
            if (ratios[v] <= tau_max) p.area[v] += (tau_max - ratios[v]) / (tau_max - 1) / double(times.size());
        p.ratio.push_back(std::move(ratios));
    }
    return p;
}

double profile_at(const Profile& p, std::size_t v, double tau) {
    if (p.ratio.empty()) return 0;
    std::size_t within = 0;
    for (const auto& row : p.ratio) within += row[v] <= tau;
    return double(within) / double(p.ratio.size());
}

double median_time(std::vector<double> times) {
    if (times.empty()) return std::nan("");
    std::sort(times.begin(), times.end());
    const std::size_t n = times.size();
    return n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
}

}  // namespace bp
