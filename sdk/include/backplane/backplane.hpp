// Everything a plugin author includes.
#pragma once

#include "backplane/components.hpp"
#include "backplane/error.hpp"
#include "backplane/metrics.hpp"
#include "backplane/optimizer.hpp"
#include "backplane/params.hpp"
#include "backplane/plugin.hpp"
#include "backplane/random.hpp"
#include "backplane/tensor.hpp"
