#include <backplane/backplane.hpp>

#include "datasets.hpp"

BACKPLANE_PLUGIN("backplane-datasets", "0.1.0") {
    register_synthetic_datasets(manifest);
    register_csv_dataset(manifest);
    register_idx_dataset(manifest);
    register_text_dataset(manifest);
}
