#include "train/shard_schedule.hpp"

namespace bp {

std::size_t ShardSchedule::take(std::size_t current, std::size_t first, std::size_t last, int units) {
    std::lock_guard lock(mutex_);
    if (current != none) {
        held_[current] = false;
        if (++next_[current] == units) current = none;
    }
    // The free unfinished shard with the fewest units run, the first of equals. `current`,
    // freed above, is one of them while unfinished, so `behind` is set whenever it is.
    std::size_t behind = none;
    for (std::size_t s = first; s < last; ++s)
        if (!held_[s] && next_[s] < units && (behind == none || next_[s] < next_[behind])) behind = s;
    const bool stay = current != none && next_[behind] + kSlack >= next_[current];
    const std::size_t chosen = stay ? current : behind;
    if (chosen != none) held_[chosen] = true;
    return chosen;
}

}  // namespace bp
