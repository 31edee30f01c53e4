/* cpus.h: how many CPUs this process may really use, and the default worker count from it. */
#ifndef SHOAL_CPUS_H
#define SHOAL_CPUS_H

/* The CPUs this process may run on (its affinity mask), capped by a cgroup v2 CPU quota
 * (cpu.max "quota period", rounded up): a 2-CPU container on a 64-core host counts 2. */
int cpus_usable(void);

/* quota/period of a cgroup v2 cpu.max text ("max 100000" or "200000 100000"), rounded up;
 * 0 when there is no quota or the text cannot be read. */
int cpus_from_cpu_max(const char *text);

/* The default `workers`: 1 on up to 2 usable CPUs (the pooler shares them with the kernel's
 * network work, and usually with PostgreSQL or the clients: a second worker only adds
 * cross-worker hand-offs), else one fewer than the CPUs, at most 64. */
int cpus_default_workers(int usable);

#endif
