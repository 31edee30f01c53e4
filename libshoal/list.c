/* list.c: a connection's state is the list it is on; conn_set_state() is the one way to move. */
#include "internal.h"

void list_push_head(struct lconn_list *l, struct shoal_conn *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	else
		l->tail = c;
	l->head = c;
	l->count++;
}

void list_remove(struct lconn_list *l, struct shoal_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

static struct lconn_list *list_of(struct lpool *p, enum lconn_state s)
{
	switch (s) {
	case LC_IDLE:
		return &p->idle;
	case LC_BUSY:
		return &p->busy;
	case LC_OPENING:
		break;
	}
	return NULL;
}

void conn_set_state(struct lpool *p, struct shoal_conn *c, enum lconn_state s)
{
	struct lconn_list *from = list_of(p, c->state), *to = list_of(p, s);

	if (from)
		list_remove(from, c);
	else
		p->opening--;
	c->state = s;
	if (s == LC_BUSY) {
		c->acquired_ms = now_ms();
		c->leak_reported = false;
	}
	if (to)
		list_push_head(to, c);
	else
		p->opening++;
}
