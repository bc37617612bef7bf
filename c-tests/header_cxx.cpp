// mipc.h must compile as C++ too (STYLE §3): extern "C", no C-only constructs.
#include "mipc.h"
static_assert(sizeof(sysV_msg_payload_t) == 2124 && MIPC_OK == 0, "mipc.h as C++");
