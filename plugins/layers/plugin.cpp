#include <backplane/backplane.hpp>

#include "layers.hpp"

BACKPLANE_PLUGIN("backplane-layers", "0.2.0") {
    register_dense(manifest);
    register_reshaping_layers(manifest);
    register_dropout(manifest);
    register_conv2d(manifest);
    register_pooling(manifest);
    register_batch_norm(manifest);
    register_merge_layers(manifest);
    register_embeddings(manifest);
    register_layer_norm(manifest);
    register_attention(manifest);
    register_lstm(manifest);
    register_gru(manifest);
}
