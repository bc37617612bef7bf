/* stub_libmipc: a stand-in libmipc.so (soname libmipc.so) whose every function fails.
 *
 * It plays the vendor library a legacy binary was linked against: the LD_PRELOAD test runs
 * a program linked against it, which must fail plainly and work once
 * LD_PRELOAD=target/release/libmipc.so puts the real library in front. Every call prints
 * "stub: <function>" to stderr and returns MIPC_ERROR (or a "stub" string).
 */
#include <stdio.h>

#include "mipc.h"

#define STUB()                                                                                 \
    do {                                                                                       \
        fprintf(stderr, "stub: %s\n", __func__);                                               \
        return MIPC_ERROR;                                                                     \
    } while (0)

int mipc_init(const char *name)
{
    (void)name;
    STUB();
}

int mipc_send_sync_msg(const char *dst, unsigned int api_id, const void *in, unsigned int in_size,
                       void *out, unsigned int out_size, int timeout)
{
    (void)dst, (void)api_id, (void)in, (void)in_size, (void)out, (void)out_size, (void)timeout;
    STUB();
}

int mipc_send_msg(const char *src, const char *dst, unsigned int api_id, const void *in,
                  unsigned int in_size, int sync_flag)
{
    (void)src, (void)dst, (void)api_id, (void)in, (void)in_size, (void)sync_flag;
    STUB();
}

int mipc_response_msg(const char *to, const char *from, unsigned int api_id, const void *out,
                      unsigned int out_size)
{
    (void)to, (void)from, (void)api_id, (void)out, (void)out_size;
    STUB();
}

int mipc_receive_msg(char *src_out, unsigned int *api_id_out, const void *msg)
{
    (void)src_out, (void)api_id_out, (void)msg;
    STUB();
}

int mipc_mq_receive(int mqd, void *buf, int size, long type, int timeout)
{
    (void)mqd, (void)buf, (void)size, (void)type, (void)timeout;
    STUB();
}

int mipc_mq_send(int mqd, const void *buf, int size, int flag)
{
    (void)mqd, (void)buf, (void)size, (void)flag;
    STUB();
}

int mipc_mq_create(void)
{
    STUB();
}

int mipc_ping(const char *dst, int timeout)
{
    (void)dst, (void)timeout;
    STUB();
}

int mipc_user_thread_info_register(const char *name, int mqd, pthread_t tid)
{
    (void)name, (void)mqd, (void)tid;
    STUB();
}

int mipc_user_thread_info_find(char *name_out, int *mqd_out, pthread_t tid)
{
    (void)name_out, (void)mqd_out, (void)tid;
    STUB();
}

int mipc_clear_resp_msgq(const char *name, int mqd, unsigned int api_id)
{
    (void)name, (void)mqd, (void)api_id;
    STUB();
}

int mipc_receive_response_msg(const char *name, int mqd, unsigned int api_id, void *out,
                              unsigned int out_size, int timeout)
{
    (void)name, (void)mqd, (void)api_id, (void)out, (void)out_size, (void)timeout;
    STUB();
}

int mthread_register_mq(int mqd, int (*handler)(char *msg, int size), int *thread_index,
                        int *mq_index)
{
    (void)mqd, (void)handler, (void)thread_index, (void)mq_index;
    STUB();
}

int mthread_check_mq_msg(int thread_index, int mq_index, char *msg, int size)
{
    (void)thread_index, (void)mq_index, (void)msg, (void)size;
    STUB();
}

int mipc_exit(void)
{
    STUB();
}

const char *mipc_last_error(void)
{
    return "stub libmipc: every call fails";
}

const char *mipc_version(void)
{
    fprintf(stderr, "stub: %s\n", __func__);
    return "stub";
}
