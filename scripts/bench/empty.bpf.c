// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The floor of this design (SPEC §9): programs that do nothing, on the same
 * tracepoints as the tap. A process that is not a target should pay no more
 * than 1.2x what these cost it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tracepoint/syscalls/sys_enter_sendto")
int empty_enter(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_exit_sendto")
int empty_exit(void *ctx) { return 0; }

/* The tap notes wazuh-db's reads here (the order of SPEC §3): every recvfrom pays it. */
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int empty_recv_exit(void *ctx) { return 0; }
