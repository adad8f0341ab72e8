// The datasets library registers its two files' components in one manifest.
#pragma once

#include <backplane/plugin.hpp>

void register_synthetic_datasets(bp::Manifest& manifest);
void register_csv_dataset(bp::Manifest& manifest);
