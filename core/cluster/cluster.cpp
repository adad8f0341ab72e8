#include "cluster/cluster.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>

#ifdef BACKPLANE_MPI
#include <mpi.h>
#endif

namespace bp {

namespace {

Cluster* joined = nullptr;

// The process count a launcher announced in the environment: 0 when none started this
// process, -1 when one did without saying how many (PMIx alone).
int launched_size() {
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
        if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
    return std::getenv("PMIX_RANK") ? -1 : 0;
}

}  // namespace

#ifdef BACKPLANE_MPI

namespace {

// What an exception says, as main would print it.
std::string message_of(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::filesystem::filesystem_error& e) {
        return e.path1().string() + ": " + e.code().message();
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

void check(int status, const char* what) {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw Error(std::string("MPI ") + what + " failed: " + std::string(text, std::size_t(length)));
}

}  // namespace

Cluster& Cluster::join() {
    static Cluster cluster;
    if (joined) return *joined;
    joined = &cluster;
    if (launched_size() == 0) return cluster;
    int provided = 0;
    // Serialized: a comparison's queue and a trainer's step call MPI from one thread at a time.
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "initialisation");
    if (provided < MPI_THREAD_SERIALIZED)
        throw Error("this MPI library cannot be called from the training threads (MPI_THREAD_SERIALIZED)");
    MPI_Comm_rank(MPI_COMM_WORLD, &cluster.rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &cluster.size_);
    cluster.at_.resize(std::size_t(cluster.size_));
    cluster.at_too_.resize(std::size_t(cluster.size_));
    return cluster;
}

void Cluster::leave() {
    int started = 0, finished = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&finished);
    if (started && !finished) MPI_Finalize();
}

void Cluster::abort(int status) {
    int started = 0;
    MPI_Initialized(&started);
    if (started) MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status);
}

std::string Cluster::library() {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(text, &length);
    std::string s(text, std::size_t(length));
    if (const auto end = s.find_first_of(",\n"); end != std::string::npos) s.resize(end);
    return s;
}

// Displacements from counts, into buffers sized once in join(): a training step's
// collectives allocate nothing of ours.
const int* Cluster::offsets(std::span<const int> counts, std::vector<int>& at) {
    for (std::size_t i = 0; i < counts.size(); ++i) at[i] = i == 0 ? 0 : at[i - 1] + counts[i - 1];
    return at.data();
}

void Cluster::all_gather(std::span<const double> mine, std::span<double> all, std::span<const int> counts) {
    check(MPI_Allgatherv(mine.data(), int(mine.size()), MPI_DOUBLE, all.data(), counts.data(), offsets(counts, at_),
                         MPI_DOUBLE, MPI_COMM_WORLD), "allgather");
}

void Cluster::all_gather(std::span<const float> mine, std::span<float> all, std::span<const int> counts) {
    check(MPI_Allgatherv(mine.data(), int(mine.size()), MPI_FLOAT, all.data(), counts.data(), offsets(counts, at_),
                         MPI_FLOAT, MPI_COMM_WORLD), "allgather");
}

void Cluster::all_to_all(std::span<const float> send, std::span<const int> send_counts, std::span<float> recv,
                         std::span<const int> recv_counts) {
    check(MPI_Alltoallv(send.data(), send_counts.data(), offsets(send_counts, at_), MPI_FLOAT, recv.data(),
                        recv_counts.data(), offsets(recv_counts, at_too_), MPI_FLOAT, MPI_COMM_WORLD), "alltoall");
}

void Cluster::sum(std::span<int> values) {
    check(MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_INT, MPI_SUM, MPI_COMM_WORLD), "allreduce");
}

std::string Cluster::broadcast(const std::string& text) {
    if (alone()) return text;
    int length = rank_ == 0 ? int(text.size()) : 0;
    check(MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD), "broadcast");
    std::string out = rank_ == 0 ? text : std::string(std::size_t(length), '\0');
    check(MPI_Bcast(out.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD), "broadcast");
    return out;
}

void Cluster::send(int to, int tag, const std::string& text) {
    check(MPI_Send(text.data(), int(text.size()), MPI_CHAR, to, tag, MPI_COMM_WORLD), "send");
}

namespace {

Cluster::Message receive_probed(const MPI_Status& status) {
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    Cluster::Message m{status.MPI_SOURCE, status.MPI_TAG, std::string(std::size_t(length), '\0')};
    check(MPI_Recv(m.text.data(), length, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE), "receive");
    return m;
}

}  // namespace

Cluster::Message Cluster::receive(int from) {
    MPI_Status status;
    check(MPI_Probe(from < 0 ? MPI_ANY_SOURCE : from, MPI_ANY_TAG, MPI_COMM_WORLD, &status), "probe");
    return receive_probed(status);
}

Cluster::Message Cluster::poll() {
    int arrived = 0;
    MPI_Status status;
    check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &arrived, &status), "probe");
    return arrived ? receive_probed(status) : Message{};
}

void Cluster::agree(const std::function<void()>& step) {
    std::exception_ptr error;
    try {
        step();
    } catch (...) {
        error = std::current_exception();
    }
    if (alone()) {
        if (error) std::rethrow_exception(error);
        return;
    }
    // Every process says whether it failed, so the first failed one is known to all.
    std::vector<int> failed(std::size_t(size_), 0);
    const int mine = error ? 1 : 0;
    check(MPI_Allgather(&mine, 1, MPI_INT, failed.data(), 1, MPI_INT, MPI_COMM_WORLD), "allgather");
    int first = -1;
    for (int p = 0; p < size_ && first < 0; ++p)
        if (failed[std::size_t(p)]) first = p;
    if (first < 0) return;
    failed_together_ = true;
    if (first != rank_) throw PeerFailed("rank " + std::to_string(first) + " failed");
    if (rank_ == 0) std::rethrow_exception(error);
    throw Error("rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + message_of(error));
}

#else  // a build without MPI: a cluster of one

Cluster& Cluster::join() {
    static Cluster cluster;
    if (joined) return *joined;
    joined = &cluster;
    const int size = launched_size();
    const char* rank = std::getenv("PMIX_RANK");
    if (size > 1 || (size < 0 && rank && std::string(rank) != "0"))
        throw Error("this process was started by an MPI launcher as one of " +
                    (size > 1 ? std::to_string(size) : std::string("several")) +
                    " processes, but this backplane was built without MPI, so each would train the same run alone; "
                    "install Open MPI (apt-get install libopenmpi-dev openmpi-bin) and rebuild (scripts/build.sh), or "
                    "run it without mpirun");
    return cluster;
}

void Cluster::leave() {}

void Cluster::abort(int status) { std::_Exit(status); }

std::string Cluster::library() { return "not built with MPI"; }

void Cluster::agree(const std::function<void()>& step) { step(); }

// A cluster of one: every collective is a copy.
void Cluster::all_gather(std::span<const double> mine, std::span<double> all, std::span<const int>) {
    std::copy(mine.begin(), mine.end(), all.begin());
}
void Cluster::all_gather(std::span<const float> mine, std::span<float> all, std::span<const int>) {
    std::copy(mine.begin(), mine.end(), all.begin());
}
void Cluster::all_to_all(std::span<const float> send, std::span<const int>, std::span<float> recv, std::span<const int>) {
    std::copy(send.begin(), send.end(), recv.begin());
}
void Cluster::sum(std::span<int>) {}
std::string Cluster::broadcast(const std::string& text) { return text; }
// Alone, no one else to talk to: never called.
void Cluster::send(int, int, const std::string&) { throw Error("no other process to send to"); }
Cluster::Message Cluster::receive(int) { throw Error("no other process to receive from"); }
Cluster::Message Cluster::poll() { return {}; }

#endif

Cluster& Cluster::world() {
    static Cluster one;
    return joined ? *joined : one;
}

}  // namespace bp
