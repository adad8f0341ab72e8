// A shared library with no Backplane entry point.
extern "C" __attribute__((visibility("default"))) int not_a_plugin() { return 42; }
