// The layers library registers the components of its files in one manifest.
#pragma once

#include <backplane/plugin.hpp>

void register_dense(bp::Manifest& manifest);
void register_reshaping_layers(bp::Manifest& manifest);
void register_dropout(bp::Manifest& manifest);
void register_conv2d(bp::Manifest& manifest);
void register_pooling(bp::Manifest& manifest);
void register_batch_norm(bp::Manifest& manifest);
void register_merge_layers(bp::Manifest& manifest);
void register_embeddings(bp::Manifest& manifest);
void register_layer_norm(bp::Manifest& manifest);
void register_attention(bp::Manifest& manifest);
void register_lstm(bp::Manifest& manifest);
void register_gru(bp::Manifest& manifest);
