/* layout: the SPEC §2 wire layout as the C compiler sees mipc.h.
 *
 * Prints one "name value" line per struct size, field offset and constant, for the Rust
 * test to compare with mipc::wire, and checks the numbers of SPEC §2 at compile time for
 * x86_64 / aarch64 (8-byte long and pthread_t) and 32-bit ARM / i686 (4-byte ones).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "mipc.h"

/* Every target */
_Static_assert(MIPC_NAME_MAX_LEN == 32, "MIPC_NAME_MAX_LEN");
_Static_assert(MIPC_MSG_MAX_LEN == 2048, "MIPC_MSG_MAX_LEN");
_Static_assert(MIPC_MSG_ROOT_KEY == 0x4D495043, "MIPC_MSG_ROOT_KEY is \"MIPC\"");
_Static_assert(MIPC_OK == 0 && MIPC_ERROR == -1, "MIPC_OK / MIPC_ERROR");
_Static_assert(MIPC_TRUE == 1 && MIPC_FALSE == 0, "MIPC_TRUE / MIPC_FALSE");
_Static_assert(MIPC_MSG_SYNC_WAIT_FOREVER == -1, "MIPC_MSG_SYNC_WAIT_FOREVER");
_Static_assert(MIPC_USER_INFO_NUM == 10, "MIPC_USER_INFO_NUM");
_Static_assert(MIPC_MSG_TYPE_NOTICE == 0x7FFFFF00, "MIPC_MSG_TYPE_NOTICE");
_Static_assert(MIPC_MSG_TYPE_PING == 0x7FFFFF01, "MIPC_MSG_TYPE_PING");
_Static_assert(MIPC_DEFAULT_MAX_MSG_SIZE == sizeof(sysV_msg_t), "MIPC_DEFAULT_MAX_MSG_SIZE");
_Static_assert(sizeof(MIPC_MSG_HDR_T) == 12, "MIPC_MSG_HDR_T");
_Static_assert(offsetof(sysV_msg_payload_t, dst_name) == 32, "dst_name");
_Static_assert(offsetof(sysV_msg_payload_t, msg_hdr) == 64, "msg_hdr");
_Static_assert(offsetof(sysV_msg_payload_t, payload) == 76, "payload");
_Static_assert(sizeof(sysV_msg_payload_t) == 2124, "sysV_msg_payload_t");
_Static_assert(offsetof(sysV_msg_t, msg_payload) == sizeof(long), "mtype is a long");

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(sysV_msg_t) == 2136, "sysV_msg_t (64-bit)");
_Static_assert(sizeof(MIPC_THREAD_INFO_T) == 56, "MIPC_THREAD_INFO_T (64-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, flag_is_hold) == 0, "flag_is_hold");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, thread_id) == 8, "thread_id (64-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, name) == 16, "name (64-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, mqd) == 48, "mqd (64-bit)");
#elif defined(__arm__) || defined(__i386__)
_Static_assert(sizeof(sysV_msg_t) == 2128, "sysV_msg_t (32-bit)");
_Static_assert(sizeof(MIPC_THREAD_INFO_T) == 44, "MIPC_THREAD_INFO_T (32-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, flag_is_hold) == 0, "flag_is_hold");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, thread_id) == 4, "thread_id (32-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, name) == 8, "name (32-bit)");
_Static_assert(offsetof(MIPC_THREAD_INFO_T, mqd) == 40, "mqd (32-bit)");
#endif

#define SIZE(T) printf("sizeof(%s) %zu\n", #T, sizeof(T))
#define OFFSET(T, field) printf("offsetof(%s,%s) %zu\n", #T, #field, offsetof(T, field))
#define CONSTANT(c) printf("%s %lld\n", #c, (long long)(c))

int main(void)
{
    SIZE(long);
    SIZE(pthread_t);

    SIZE(MIPC_MSG_HDR_T);
    OFFSET(MIPC_MSG_HDR_T, msg_type);
    OFFSET(MIPC_MSG_HDR_T, msg_size);
    OFFSET(MIPC_MSG_HDR_T, sync_flag);

    SIZE(sysV_msg_payload_t);
    OFFSET(sysV_msg_payload_t, src_name);
    OFFSET(sysV_msg_payload_t, dst_name);
    OFFSET(sysV_msg_payload_t, msg_hdr);
    OFFSET(sysV_msg_payload_t, payload);

    SIZE(sysV_msg_t);
    OFFSET(sysV_msg_t, type);
    OFFSET(sysV_msg_t, msg_payload);

    SIZE(MIPC_THREAD_INFO_T);
    OFFSET(MIPC_THREAD_INFO_T, flag_is_hold);
    OFFSET(MIPC_THREAD_INFO_T, thread_id);
    OFFSET(MIPC_THREAD_INFO_T, name);
    OFFSET(MIPC_THREAD_INFO_T, mqd);

    CONSTANT(MIPC_NAME_MAX_LEN);
    CONSTANT(MIPC_MSG_MAX_LEN);
    CONSTANT(MIPC_MSG_ROOT_KEY);
    CONSTANT(MIPC_OK);
    CONSTANT(MIPC_ERROR);
    CONSTANT(MIPC_TRUE);
    CONSTANT(MIPC_FALSE);
    CONSTANT(MIPC_MSG_SYNC_WAIT_FOREVER);
    CONSTANT(MIPC_USER_INFO_NUM);
    CONSTANT(MIPC_DEFAULT_MAX_MSG_SIZE);
    CONSTANT(MIPC_MSG_TYPE_NOTICE);
    CONSTANT(MIPC_MSG_TYPE_PING);
    return 0;
}
