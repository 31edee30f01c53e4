/* mailbox.c: the workers' registry and their mailboxes: how one thread posts commands and mail
 * to another (the thread that runs a worker is daemon/worker.c's). */
#include "worker.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static struct worker *all_workers;
static int n_workers;

void worker_set_all(struct worker *ws, int n)
{
	all_workers = ws;
	n_workers = n;
}

int worker_count(void)
{
	return n_workers;
}

struct worker *worker_get(int id)
{
	return id >= 0 && id < n_workers ? &all_workers[id] : NULL;
}

struct mail *worker_take_mail(struct worker *w)
{
	pthread_mutex_lock(&w->mail_lock);
	struct mail *m = w->mail_head;
	w->mail_head = w->mail_tail = NULL;
	pthread_mutex_unlock(&w->mail_lock);
	return m;
}

static void worker_wake(struct worker *w)
{
	uint64_t one = 1;
	if (write(w->mailbox.fd, &one, sizeof(one)) < 0)
		log_warn("mailbox write: %s", strerror(errno));
}

void worker_mail(struct worker *w, struct mail *m)
{
	m->next = NULL;
	pthread_mutex_lock(&w->mail_lock);
	if (w->mail_tail)
		w->mail_tail->next = m;
	else
		w->mail_head = m;
	w->mail_tail = m;
	pthread_mutex_unlock(&w->mail_lock);
	worker_wake(w);
}

void worker_send_server(struct worker *from, struct mail *m)
{
	m->next = from->outbox;
	from->outbox = m;
}

void worker_post(struct worker *w, int cmds)
{
	atomic_fetch_or(&w->cmds, cmds);
	worker_wake(w);
}
