/* cpus.c: the CPUs a process may use, from its affinity mask and its cgroup's CPU quota. */
#include "cpus.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cpus_from_cpu_max(const char *text)
{
	char quota[32];
	long long period = 0;
	if (!text || sscanf(text, "%31s %lld", quota, &period) != 2 || period <= 0 ||
	    strcmp(quota, "max") == 0)
		return 0;
	char *end;
	long long q = strtoll(quota, &end, 10);
	if (*end || q <= 0)
		return 0;
	long long n = (q + period - 1) / period;
	return n > 4096 ? 4096 : (int)n;
}

/* This process's cgroup v2 cpu.max quota in CPUs, or 0 for none. Only the process's own
 * cgroup is read, as mounted in a container (/sys/fs/cgroup/cpu.max). */
static int cgroup_cpus(void)
{
	char text[64] = "";
	FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
	if (!f)
		return 0;
	if (!fgets(text, sizeof(text), f))
		text[0] = '\0';
	fclose(f);
	return cpus_from_cpu_max(text);
}

int cpus_usable(void)
{
	cpu_set_t set;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : (int)online;
	if (n < 1)
		n = 1;
	int quota = cgroup_cpus();
	return quota > 0 && quota < n ? quota : n;
}

int cpus_default_workers(int usable)
{
	if (usable <= 2)
		return 1;
	return usable - 1 > 64 ? 64 : usable - 1;
}
