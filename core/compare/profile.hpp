// AlgoPerf's performance profile: over a suite's workloads, how often each variant
// reached the target within tau times the fastest variant's time. Pure functions.
#pragma once

#include <vector>

namespace bp {

struct Profile {
    double tau_max = 4;
    // ratio[w][v]: variant v's time to target on workload w over the fastest variant's
    // there (>= 1); infinite where v never reached it, or no variant did.
    std::vector<std::vector<double>> ratio;
    // area[v]: the area under rho_v(tau) from 1 to tau_max over (tau_max - 1): 1 for a
    // variant fastest everywhere, 0 for one never within tau_max.
    std::vector<double> area;
};

// times[w][v]: the time (epochs or seconds) variant v took to reach workload w's
// target; infinite where it did not.
Profile performance_profile(const std::vector<std::vector<double>>& times, double tau_max = 4);

// rho_v(tau): the fraction of workloads on which variant v was within tau of the fastest.
double profile_at(const Profile& p, std::size_t v, double tau);

// The median of a variant's runs on one workload, infinities included (a run that
// never reached the target); infinite when half or more did not. NaN when empty.
double median_time(std::vector<double> times);

}  // namespace bp
