// The datasets library registers the components of its files in one manifest.
#pragma once

#include <backplane/plugin.hpp>

void register_synthetic_datasets(bp::Manifest& manifest);
void register_csv_dataset(bp::Manifest& manifest);
void register_idx_dataset(bp::Manifest& manifest);
void register_text_dataset(bp::Manifest& manifest);
