# backplane_add_plugin(NAME SOURCES src...) builds a plugin library the loader accepts:
# a MODULE library named lib<NAME>.so, hidden symbols (only the BACKPLANE_PLUGIN entry
# points are exported), position-independent, C++20, optimised (-O2 when no build type
# is set), against Backplane::sdk only.
# Output goes to BACKPLANE_PLUGIN_DIR when it is set (Backplane's own build does).
function(backplane_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE Backplane::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME ${name}
    SUFFIX ".so"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  # A plugin runs inside the training loop: optimise it even when no build type is set.
  target_compile_options(${name} PRIVATE $<$<CONFIG:>:-O2>)
  if(BACKPLANE_PLUGIN_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${BACKPLANE_PLUGIN_DIR})
  endif()
endfunction()
